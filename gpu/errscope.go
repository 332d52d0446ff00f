package gpu

// Error scopes around calls the Go binding leaves uncovered.
//
// The binding wraps each wgpu call that can fail in a *validation* error
// scope and returns what it catches as an error. Out-of-memory and internal
// errors pass through that scope and, with no handler installed, wgpu-native
// treats them as fatal (the process aborts). We push our own out-of-memory
// scope around such calls (buffer creation, writes, pipeline creation) so
// that, say, a model too large for VRAM becomes an error. (This wgpu-native
// build aborts on the "internal" filter, so internal errors stay fatal.)
//
// The binding does not expose PushErrorScope/PopErrorScope, so we call the C
// functions (linked in by the binding's static wgpu-native) with the device
// handle read from *wgpu.Device, whose only field is that handle; the size
// check below disables the scopes if a future binding changes that layout.
//
// Not coverable: wgpu-native panics on a failed queue submit regardless of
// scopes, so the Recorder validates everything before it submits.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*rwkv_wgpu_err_cb)(uint32_t type, char const *message, void *userdata);
extern void wgpuDevicePushErrorScope(void *device, uint32_t filter);
extern void wgpuDevicePopErrorScope(void *device, rwkv_wgpu_err_cb callback, void *userdata);

typedef struct { uint32_t type; char *msg; } rwkv_wgpu_err;

static void rwkv_wgpu_scope_cb(uint32_t type, char const *message, void *userdata) {
	rwkv_wgpu_err *e = (rwkv_wgpu_err *)userdata;
	if (type == 0 || e->type != 0) {
		return;
	}
	e->type = type;
	e->msg = strdup(message ? message : "");
}

static void rwkv_wgpu_push(void *dev, uint32_t filter) {
	wgpuDevicePushErrorScope(dev, filter);
}

static rwkv_wgpu_err rwkv_wgpu_pop(void *dev) {
	rwkv_wgpu_err e = {0, NULL};
	wgpuDevicePopErrorScope(dev, rwkv_wgpu_scope_cb, &e);
	return e;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"
)

var scopesUsable = unsafe.Sizeof(wgpu.Device{}) == unsafe.Sizeof(uintptr(0))

func rawDevice(d *wgpu.Device) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(d))
}

// guard runs f inside an out-of-memory error scope and returns the error f
// returned or else the one the scope caught.
func guard(d *wgpu.Device, f func() error) error {
	return scoped(d, wgpu.ErrorFilterOutOfMemory, f)
}

// scoped runs f inside an error scope with the given filter.
func scoped(d *wgpu.Device, filter wgpu.ErrorFilter, f func() error) error {
	if !scopesUsable || d == nil {
		return f()
	}
	raw := rawDevice(d)
	C.rwkv_wgpu_push(raw, C.uint32_t(filter))
	err := f()
	e := C.rwkv_wgpu_pop(raw)
	if e.msg != nil {
		msg := C.GoString(e.msg)
		C.free(unsafe.Pointer(e.msg))
		if err == nil {
			err = fmt.Errorf("%s: %s", wgpu.ErrorType(e._type), msg)
		}
	}
	return err
}
