// Package vkinfo reports the Vulkan physical devices of this machine (name,
// type, ids, driver, API version, memory heaps) without creating a device.
//
// It is the only package that imports github.com/vulkan-go/vulkan. That
// binding's own loader looks for "libvulkan.so", a development symlink most
// end-user machines lack, so vkinfo opens the loader itself (libvulkan.so.1
// on Linux, or the file named by RWKV_VULKAN_LIB) and hands its
// vkGetInstanceProcAddr to the binding. Without a loader every call returns
// ErrNoLoader; it never crashes. Only Linux is supported; elsewhere Devices
// returns ErrNoLoader.
package vkinfo

import (
	"errors"
	"fmt"
)

// ErrNoLoader is returned (wrapped, with the reason) when no Vulkan loader
// library can be opened on this machine.
var ErrNoLoader = errors.New("vkinfo: no Vulkan loader library found (install the Vulkan loader, e.g. Debian/Ubuntu package libvulkan1, or set RWKV_VULKAN_LIB)")

// ErrNoDriver is returned (wrapped, with Vulkan's result) when the loader
// is present but no driver (ICD) can serve an instance: Vulkan's
// VK_ERROR_INCOMPATIBLE_DRIVER or VK_ERROR_INITIALIZATION_FAILED from
// vkCreateInstance. WebGPU sees the same machine as having no adapter
// (gpu.ErrNoAdapter), and tests treat both alike (internal/testenv.NoGPU).
var ErrNoDriver = errors.New("vkinfo: no usable Vulkan driver (install one; on a machine without a GPU, Mesa's lavapipe: mesa-vulkan-drivers)")

// Unavailable reports whether err means that this machine has no usable
// Vulkan: no loader (ErrNoLoader) or no driver (ErrNoDriver).
func Unavailable(err error) bool {
	return errors.Is(err, ErrNoLoader) || errors.Is(err, ErrNoDriver)
}

// Type is the kind of a physical device, as Vulkan reports it.
type Type string

const (
	Discrete   Type = "discrete"
	Integrated Type = "integrated"
	Virtual    Type = "virtual"
	CPU        Type = "cpu"
	Other      Type = "other"
)

// Heap is one memory heap of a device.
type Heap struct {
	Size        uint64 // bytes
	DeviceLocal bool   // VK_MEMORY_HEAP_DEVICE_LOCAL_BIT
}

// Device describes one Vulkan physical device.
type Device struct {
	Name     string
	Type     Type
	VendorID uint32
	DeviceID uint32

	// DriverName and DriverInfo come from VkPhysicalDeviceDriverProperties
	// (Vulkan 1.2 devices); both are empty on older devices.
	DriverName string
	DriverInfo string
	// DriverVersion is the raw vendor-encoded value; DriverVersionString
	// decodes it with the vendor's scheme (NVIDIA, Intel on Windows, else the
	// standard Vulkan major.minor.patch).
	DriverVersion       uint32
	DriverVersionString string

	APIVersion       uint32 // VK_MAKE_API_VERSION encoded
	APIVersionString string // "1.3.255"

	// TimestampPeriodNs is how many nanoseconds one timestamp tick lasts.
	TimestampPeriodNs float32

	Heaps []Heap
}

// DeviceLocalBytes is the total size of the device-local heaps: VRAM on a
// discrete GPU, the shared pool on an integrated GPU or a CPU device.
func (d Device) DeviceLocalBytes() uint64 {
	var n uint64
	for _, h := range d.Heaps {
		if h.DeviceLocal {
			n += h.Size
		}
	}
	return n
}

// String is a one-line summary, e.g. "llvmpipe (cpu, 1.3.255, llvmpipe 24.0, 7.6 GiB)".
func (d Device) String() string {
	drv := d.DriverName
	if d.DriverInfo != "" {
		drv += " " + d.DriverInfo
	}
	if drv == "" {
		drv = "driver " + d.DriverVersionString
	}
	return fmt.Sprintf("%s (%s, Vulkan %s, %s, %.1f GiB device-local)", d.Name, d.Type, d.APIVersionString, drv, float64(d.DeviceLocalBytes())/(1<<30))
}

func versionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", (v>>22)&0x7f, (v>>12)&0x3ff, v&0xfff)
}

// driverVersionString decodes a vendor-specific driverVersion.
func driverVersionString(vendor, v uint32) string {
	switch vendor {
	case 0x10de: // NVIDIA: 10.8.8.6 bits
		return fmt.Sprintf("%d.%d.%d.%d", v>>22, (v>>14)&0xff, (v>>6)&0xff, v&0x3f)
	case 0x8086: // Intel on Windows packs 18.14 bits (major ~100, so v>>22 == 0); Mesa uses the standard scheme
		if v>>22 == 0 {
			return fmt.Sprintf("%d.%d", v>>14, v&0x3fff)
		}
	}
	return versionString(v)
}
