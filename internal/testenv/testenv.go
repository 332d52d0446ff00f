// Package testenv holds the one rule for tests whose environment lacks
// something they need (the shared fixtures, a GPU adapter, a Vulkan driver):
// they skip with the reason on a developer's machine and fail under CI, so
// that a CI run can never pass by skipping. `.ci/run` sets CI=1 itself.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the CI environment variable is set (to anything but
// "" or "0"): missing fixtures or devices are then failures.
func CI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0"
}

// RequireGPU reports whether GPU tests must fail, not skip, when no adapter
// or Vulkan driver exists: under CI, or with RWKV_REQUIRE_GPU=1.
func RequireGPU() bool {
	return CI() || os.Getenv("RWKV_REQUIRE_GPU") == "1"
}

// Missing skips t with the reason, or fails it when strict is true (pass CI()
// for fixtures, RequireGPU() for devices), saying why it fails instead of
// skipping.
func Missing(t testing.TB, strict bool, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if strict {
		why := "RWKV_REQUIRE_GPU=1"
		if CI() {
			why = "CI"
		}
		t.Fatalf("%s (%s is set, so this fails instead of skipping)", reason, why)
	}
	t.Skipf("skipping: %s", reason)
}

// NoGPU is Missing for a missing GPU adapter or Vulkan driver: it skips, or
// fails under RequireGPU. gpu and gpu/vkinfo both use it, so a machine
// without a usable driver is treated the same way by both.
func NoGPU(t testing.TB, format string, args ...any) {
	t.Helper()
	Missing(t, RequireGPU(), format, args...)
}

// RunSelf runs the test named name of the current test binary in a child
// process with env added to (and overriding) the environment, and returns
// its combined output and exit error. Tests use it to check behaviour that
// depends on process-wide state: environment read once, signals, exit codes.
func RunSelf(t testing.TB, name string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
