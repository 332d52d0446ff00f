package gpu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/gpu/vkinfo"
)

// ErrTooBig is wrapped by errors about models that do not fit the device.
var ErrTooBig = errors.New("model does not fit the device memory")

// DeviceMemory returns the device-local memory of the adapter, from Vulkan
// (the largest device-local heap of the physical device with the adapter's
// name), and false when Vulkan cannot tell (no loader, other backend).
func (d *Device) DeviceMemory() (uint64, bool) {
	devs, err := vkinfo.Devices()
	if err != nil {
		return 0, false
	}
	info := d.Info()
	for _, v := range devs {
		if v.VendorID == info.VendorID && v.DeviceID == info.DeviceID && strings.EqualFold(v.Name, info.Name) {
			if n := v.DeviceLocalBytes(); n > 0 {
				return n, true
			}
		}
	}
	return 0, false
}

// CheckFits returns an error wrapping ErrTooBig, in GiB, when need bytes
// exceed the device's memory. It says nothing when the memory is unknown.
func (d *Device) CheckFits(need uint64, what string) error {
	have, ok := d.DeviceMemory()
	if !ok || need <= have {
		return nil
	}
	return fmt.Errorf("gpu: %s needs %.2f GiB but %s has %.2f GiB of device memory: %w",
		what, float64(need)/(1<<30), d.Info().Name, float64(have)/(1<<30), ErrTooBig)
}
