package vkinfo

import (
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

func TestDevicesFindsLavapipe(t *testing.T) {
	devs, err := Devices()
	if Unavailable(err) {
		// The same rule as the gpu package's for a missing adapter.
		testenv.NoGPU(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) == 0 {
		testenv.NoGPU(t, "no Vulkan physical device")
	}
	var lvp *Device
	for i := range devs {
		d := devs[i]
		t.Logf("%s | vendor %#x device %#x | driver %q %q %s | heaps %+v | ts %.3g ns",
			d, d.VendorID, d.DeviceID, d.DriverName, d.DriverInfo, d.DriverVersionString, d.Heaps, d.TimestampPeriodNs)
		if d.Name == "" || d.APIVersion == 0 || len(d.Heaps) == 0 {
			t.Errorf("incomplete device %+v", d)
		}
		if strings.Contains(d.Name, "llvmpipe") {
			lvp = &devs[i]
		}
	}
	if lvp == nil {
		testenv.NoGPU(t, "lavapipe (llvmpipe) not found; CI expects Mesa's software Vulkan driver")
	}
	if lvp.Type != CPU {
		t.Errorf("llvmpipe type = %s, want cpu", lvp.Type)
	}
	if lvp.DeviceLocalBytes() == 0 {
		t.Errorf("llvmpipe has no device-local heap: %+v", lvp.Heaps)
	}
	if lvp.TimestampPeriodNs <= 0 {
		t.Errorf("timestamp period %v", lvp.TimestampPeriodNs)
	}
	// Repeated calls reuse the initialised binding.
	again, err := Devices()
	if err != nil || len(again) != len(devs) {
		t.Errorf("second call: %d devices, %v", len(again), err)
	}
}

func TestVersionStrings(t *testing.T) {
	if s := versionString(1<<22 | 3<<12 | 255); s != "1.3.255" {
		t.Error(s)
	}
	if s := driverVersionString(0x10de, 535<<22|104<<14|5<<6); s != "535.104.5.0" {
		t.Error(s)
	}
	if s := driverVersionString(0x8086, 101<<14|4502); s != "101.4502" {
		t.Error(s)
	}
	if s := driverVersionString(0x8086, 24<<22|0<<12|5); s != "24.0.5" {
		t.Error(s)
	}
}
