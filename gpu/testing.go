package gpu

import (
	"errors"
	"os"
	"testing"
)

// RequireGPU reports whether tests must fail, not skip, when no adapter
// exists: the environment variable RWKV_REQUIRE_GPU=1 or CI is set.
func RequireGPU() bool {
	return os.Getenv("RWKV_REQUIRE_GPU") == "1" || os.Getenv("CI") != ""
}

// OpenTestDevice opens the best adapter (or the one RWKV_GPU names) for a
// test and closes it at the test's end. With no adapter it skips the test,
// giving the reason, unless RequireGPU, in which case it fails. Any other
// error fails the test.
func OpenTestDevice(t testing.TB) *Device {
	t.Helper()
	d, err := Open(Options{Adapter: AutoAdapter})
	if err != nil {
		if errors.Is(err, ErrNoAdapter) && !RequireGPU() {
			t.Skipf("skipping: %v", err)
		}
		if errors.Is(err, ErrNoAdapter) {
			t.Fatalf("%v (RWKV_REQUIRE_GPU or CI is set, so this fails instead of skipping)", err)
		}
		t.Fatalf("opening a GPU device: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}
