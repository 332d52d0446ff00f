//go:build linux && cgo

package vkinfo

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*rwkv_vk_void_fn)(void);
typedef rwkv_vk_void_fn (*rwkv_vk_gipa)(void *instance, const char *name);

// rwkv_vk_open dlopens a loader and returns its vkGetInstanceProcAddr, or
// NULL with *err set to dlerror()'s text (copied: malloc'd, caller frees).
static void *rwkv_vk_open(const char *lib, char **err) {
	*err = NULL;
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		*err = strdup(e ? e : "dlopen failed");
		return NULL;
	}
	void *p = dlsym(h, "vkGetInstanceProcAddr");
	if (p == NULL) {
		const char *e = dlerror();
		*err = strdup(e ? e : "vkGetInstanceProcAddr not exported");
		dlclose(h);
		return NULL;
	}
	return p;
}

// Minimal prefixes of the Vulkan structs we chain ourselves: the binding
// does not wrap vkGetPhysicalDeviceProperties2.
typedef struct {
	uint32_t sType;
	void *pNext;
	uint32_t driverID;
	char driverName[256];
	char driverInfo[256];
	uint8_t conformanceVersion[4];
} rwkv_vk_driver_props;

typedef struct {
	uint32_t sType;
	void *pNext;
	uint8_t properties[4096]; // VkPhysicalDeviceProperties is ~830 bytes; room to spare
} rwkv_vk_props2;

typedef void (*rwkv_vk_props2_fn)(void *physicalDevice, rwkv_vk_props2 *props);
typedef int32_t (*rwkv_vk_instance_version_fn)(uint32_t *version);

// VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 and ..._DRIVER_PROPERTIES.
#define RWKV_VK_ST_PROPS2 1000059001u
#define RWKV_VK_ST_DRIVER 1000196000u

static uint32_t rwkv_vk_instance_version(void *gipa) {
	rwkv_vk_instance_version_fn f = (rwkv_vk_instance_version_fn)((rwkv_vk_gipa)gipa)(NULL, "vkEnumerateInstanceVersion");
	uint32_t v = (1u << 22); // 1.0
	if (f != NULL && f(&v) != 0) {
		v = (1u << 22);
	}
	return v;
}

// rwkv_vk_driver fills name/info (256 bytes each) for a Vulkan 1.1+ instance
// and a 1.2+ device; returns 0 when the query is unavailable.
static int rwkv_vk_driver(void *gipa, void *instance, void *phys, char *name, char *info) {
	rwkv_vk_props2_fn f = (rwkv_vk_props2_fn)((rwkv_vk_gipa)gipa)(instance, "vkGetPhysicalDeviceProperties2");
	if (f == NULL) {
		return 0;
	}
	rwkv_vk_driver_props d;
	memset(&d, 0, sizeof d);
	d.sType = RWKV_VK_ST_DRIVER;
	rwkv_vk_props2 p;
	memset(&p, 0, sizeof p);
	p.sType = RWKV_VK_ST_PROPS2;
	p.pNext = &d;
	f(phys, &p);
	memcpy(name, d.driverName, 256);
	memcpy(info, d.driverInfo, 256);
	name[255] = 0;
	info[255] = 0;
	return 1;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// loaderNames are tried in order; RWKV_VULKAN_LIB, when set, is tried first.
var loaderNames = []string{"libvulkan.so.1", "libvulkan.so"}

var (
	mu       sync.Mutex
	gipa     unsafe.Pointer // vkGetInstanceProcAddr once the binding is initialised
	initErr  error
	initDone bool
)

// openLoader dlopens the first library of names that exports
// vkGetInstanceProcAddr. It touches no global state.
func openLoader(names []string) (unsafe.Pointer, error) {
	var reasons []string
	for _, n := range names {
		cn := C.CString(n)
		var cerr *C.char
		p := C.rwkv_vk_open(cn, &cerr)
		C.free(unsafe.Pointer(cn))
		if p != nil {
			return p, nil
		}
		reasons = append(reasons, C.GoString(cerr))
		C.free(unsafe.Pointer(cerr))
	}
	return nil, fmt.Errorf("%w: tried %s: %s", ErrNoLoader, strings.Join(names, ", "), strings.Join(reasons, "; "))
}

// Devices lists the Vulkan physical devices, in the loader's order.
func Devices() ([]Device, error) {
	names := loaderNames
	if env := os.Getenv("RWKV_VULKAN_LIB"); env != "" {
		names = append([]string{env}, names...)
	}
	return devicesFrom(names)
}

func devicesFrom(names []string) ([]Device, error) {
	mu.Lock()
	defer mu.Unlock()
	if !initDone {
		p, err := openLoader(names)
		if err != nil {
			return nil, err // not cached: a later call with other names may succeed
		}
		vk.SetGetInstanceProcAddr(p)
		if err := vk.Init(); err != nil {
			initErr = fmt.Errorf("vkinfo: initialising the Vulkan binding: %w", err)
		}
		gipa, initDone = p, true
	}
	if initErr != nil {
		return nil, initErr
	}
	return enumerate()
}

func enumerate() ([]Device, error) {
	apiVersion := uint32(C.rwkv_vk_instance_version(gipa))
	if apiVersion > vk.MakeVersion(1, 3, 0) {
		apiVersion = vk.MakeVersion(1, 3, 0)
	}
	var inst vk.Instance
	res := vk.CreateInstance(&vk.InstanceCreateInfo{
		SType: vk.StructureTypeInstanceCreateInfo,
		PApplicationInfo: &vk.ApplicationInfo{
			SType:            vk.StructureTypeApplicationInfo,
			PApplicationName: "rwkv-gpu vkinfo\x00",
			PEngineName:      "rwkv-gpu\x00",
			ApiVersion:       apiVersion,
		},
	}, nil, &inst)
	switch res {
	case vk.Success:
	case vk.ErrorIncompatibleDriver, vk.ErrorInitializationFailed:
		return nil, fmt.Errorf("%w: vkCreateInstance: %w", ErrNoDriver, vk.Error(res))
	default:
		return nil, fmt.Errorf("vkinfo: vkCreateInstance failed: %w", vk.Error(res))
	}
	defer vk.DestroyInstance(inst, nil)
	if err := vk.InitInstance(inst); err != nil {
		return nil, fmt.Errorf("vkinfo: loading instance functions: %w", err)
	}

	var n uint32
	if res := vk.EnumeratePhysicalDevices(inst, &n, nil); res != vk.Success {
		return nil, fmt.Errorf("vkinfo: vkEnumeratePhysicalDevices failed: %w", vk.Error(res))
	}
	if n == 0 {
		return nil, nil
	}
	phys := make([]vk.PhysicalDevice, n)
	if res := vk.EnumeratePhysicalDevices(inst, &n, phys); res != vk.Success && res != vk.Incomplete {
		return nil, fmt.Errorf("vkinfo: vkEnumeratePhysicalDevices failed: %w", vk.Error(res))
	}
	devs := make([]Device, 0, n)
	for _, pd := range phys[:n] {
		devs = append(devs, describe(inst, pd, apiVersion))
	}
	return devs, nil
}

func describe(inst vk.Instance, pd vk.PhysicalDevice, instVersion uint32) Device {
	var props vk.PhysicalDeviceProperties
	vk.GetPhysicalDeviceProperties(pd, &props)
	props.Deref()
	props.Limits.Deref()

	d := Device{
		Name:                cstr(props.DeviceName[:]),
		Type:                deviceType(props.DeviceType),
		VendorID:            props.VendorID,
		DeviceID:            props.DeviceID,
		DriverVersion:       props.DriverVersion,
		DriverVersionString: driverVersionString(props.VendorID, props.DriverVersion),
		APIVersion:          props.ApiVersion,
		APIVersionString:    versionString(props.ApiVersion),
		TimestampPeriodNs:   props.Limits.TimestampPeriod,
	}

	// Driver name/info: core in Vulkan 1.2 (both the instance and the device
	// must be at least 1.1 to call vkGetPhysicalDeviceProperties2).
	if instVersion >= vk.MakeVersion(1, 1, 0) && props.ApiVersion >= vk.MakeVersion(1, 2, 0) {
		var name, info [256]C.char
		if C.rwkv_vk_driver(gipa, unsafe.Pointer(inst), unsafe.Pointer(pd), &name[0], &info[0]) != 0 {
			d.DriverName = C.GoString(&name[0])
			d.DriverInfo = C.GoString(&info[0])
		}
	}

	var mem vk.PhysicalDeviceMemoryProperties
	vk.GetPhysicalDeviceMemoryProperties(pd, &mem)
	mem.Deref()
	for i := uint32(0); i < mem.MemoryHeapCount && i < uint32(len(mem.MemoryHeaps)); i++ {
		h := mem.MemoryHeaps[i]
		h.Deref()
		d.Heaps = append(d.Heaps, Heap{
			Size:        uint64(h.Size),
			DeviceLocal: vk.MemoryHeapFlagBits(h.Flags)&vk.MemoryHeapDeviceLocalBit != 0,
		})
	}
	return d
}

func deviceType(t vk.PhysicalDeviceType) Type {
	switch t {
	case vk.PhysicalDeviceTypeDiscreteGpu:
		return Discrete
	case vk.PhysicalDeviceTypeIntegratedGpu:
		return Integrated
	case vk.PhysicalDeviceTypeVirtualGpu:
		return Virtual
	case vk.PhysicalDeviceTypeCpu:
		return CPU
	}
	return Other
}

func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
