package gpu

// Instance creation with fully initialised extras.
//
// wgpu.CreateInstance (cogentcore/webgpu v0.23.0) mallocs its
// WGPUInstanceExtras and leaves the flags and gles3MinorVersion fields
// uninitialised: depending on heap garbage wgpu-native then aborts
// ("Unknown gles3 minor version") or turns on debug/validation flags. We
// build the descriptor ourselves, zeroed, and wrap the handle in a
// *wgpu.Instance (whose only field is that handle, checked below).

/*
#include <stdint.h>
#include <stdlib.h>

typedef struct { const void *next; uint32_t sType; } rwkv_wgpu_chain;

// Mirrors WGPUInstanceExtras of wgpu-native's wgpu.h.
typedef struct {
	rwkv_wgpu_chain chain;
	uint32_t backends;
	uint32_t flags;
	uint32_t dx12ShaderCompiler;
	uint32_t gles3MinorVersion;
	const char *dxilPath;
	const char *dxcPath;
} rwkv_wgpu_instance_extras;

typedef struct { const void *nextInChain; } rwkv_wgpu_instance_desc;

extern void *wgpuCreateInstance(const rwkv_wgpu_instance_desc *descriptor);

#define RWKV_WGPU_STYPE_INSTANCE_EXTRAS 0x00030006u

static void *rwkv_wgpu_create_instance(uint32_t backends) {
	rwkv_wgpu_instance_extras extras = {0};
	extras.chain.sType = RWKV_WGPU_STYPE_INSTANCE_EXTRAS;
	extras.backends = backends;
	rwkv_wgpu_instance_desc desc = {&extras};
	return wgpuCreateInstance(&desc);
}
*/
import "C"

import (
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"
)

var instanceWrappable = unsafe.Sizeof(wgpu.Instance{}) == unsafe.Sizeof(uintptr(0))

// newInstance creates a WebGPU instance over the native backends (Vulkan,
// Metal, D3D12). wgpu's GL backend is left out: its compute support is
// partial and on headless Linux it only adds noise.
func newInstance() (*wgpu.Instance, error) {
	if !instanceWrappable {
		// Layout changed: fall back to the binding (default backends, no extras).
		return wgpu.CreateInstance(nil), nil
	}
	ref := C.rwkv_wgpu_create_instance(C.uint32_t(wgpu.InstanceBackendPrimary))
	if ref == nil {
		return nil, errInstance
	}
	inst := new(wgpu.Instance)
	*(*unsafe.Pointer)(unsafe.Pointer(inst)) = ref
	return inst, nil
}
