package gpu

import (
	"errors"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

// RequireGPU reports whether tests must fail, not skip, when no adapter
// exists: the environment variable RWKV_REQUIRE_GPU=1 or CI is set (the
// rule lives in internal/testenv, shared with gpu/vkinfo).
func RequireGPU() bool { return testenv.RequireGPU() }

// OpenTestDevice opens the best adapter (or the one RWKV_GPU names) for a
// test and closes it at the test's end. With no adapter it skips the test,
// giving the reason, unless RequireGPU, in which case it fails. Any other
// error fails the test.
func OpenTestDevice(t testing.TB) *Device {
	t.Helper()
	d, err := Open(Options{Adapter: AutoAdapter})
	if err != nil {
		if errors.Is(err, ErrNoAdapter) {
			testenv.NoGPU(t, "%v", err)
		}
		t.Fatalf("opening a GPU device: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}
