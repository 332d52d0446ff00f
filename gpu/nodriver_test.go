package gpu

import (
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

// TestNoDriverSkipsOrFails is gpu/vkinfo's TestNoDriverIsTreatedLikeNoAdapter
// for this package: with the Vulkan loader pointed at a driver list that does
// not exist, a test needing a device skips (naming the missing adapter) and
// fails under CI, by the one rule of internal/testenv.
func TestNoDriverSkipsOrFails(t *testing.T) {
	noDriver := []string{"VK_ICD_FILENAMES=/nonexistent/rwkv-no-icd.json", "VK_DRIVER_FILES=/nonexistent/rwkv-no-icd.json", "RWKV_REQUIRE_GPU=", "RWKV_GPU="}
	for _, name := range []string{"TestOpenReportsLimits", "TestReadBandwidth"} {
		out, err := testenv.RunSelf(t, name, append(noDriver, "CI=")...)
		if err != nil || !strings.Contains(out, "--- SKIP: "+name) || !strings.Contains(out, "no WebGPU adapter") {
			t.Errorf("%s without a driver and without CI must skip naming the missing adapter; got %v:\n%s", name, err, out)
		}
		out, err = testenv.RunSelf(t, name, append(noDriver, "CI=1")...)
		if err == nil || !strings.Contains(out, "--- FAIL: "+name) || !strings.Contains(out, "fails instead of skipping") {
			t.Errorf("%s without a driver under CI must fail as a missing device; got %v:\n%s", name, err, out)
		}
	}
}
