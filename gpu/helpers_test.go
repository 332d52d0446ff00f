package gpu

import (
	"errors"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

// openTestDevice is internal/gputest.OpenDevice for this package's own
// tests (which cannot import gputest: it imports gpu).
func openTestDevice(t testing.TB) *Device {
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
