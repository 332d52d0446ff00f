// Package gputest opens the GPU device of a test: the best adapter (or the
// one RWKV_GPU names), closed when the test ends. Without an adapter the
// test skips, or fails under CI (internal/testenv's rule).
package gputest

import (
	"errors"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

// OpenDevice opens the test's device. With no adapter it skips the test,
// giving the reason, unless testenv.RequireGPU, in which case it fails. Any
// other error fails the test.
func OpenDevice(t testing.TB) *gpu.Device {
	t.Helper()
	d, err := gpu.Open(gpu.Options{Adapter: gpu.AutoAdapter})
	if err != nil {
		if errors.Is(err, gpu.ErrNoAdapter) {
			testenv.NoGPU(t, "%v", err)
		}
		t.Fatalf("opening a GPU device: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}
