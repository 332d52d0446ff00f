//go:build linux && cgo

package vkinfo

import (
	"errors"
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

func TestBogusLoaderGivesErrNoLoader(t *testing.T) {
	_, err := openLoader([]string{"libvulkan-does-not-exist.so.9"})
	if !errors.Is(err, ErrNoLoader) {
		t.Fatalf("got %v, want ErrNoLoader", err)
	}
	if !strings.Contains(err.Error(), "libvulkan-does-not-exist.so.9") {
		t.Errorf("error does not name the library: %v", err)
	}
	// A library that exists but is not a Vulkan loader.
	_, err = openLoader([]string{"libc.so.6"})
	if !errors.Is(err, ErrNoLoader) || !strings.Contains(err.Error(), "vkGetInstanceProcAddr") {
		t.Errorf("libc: got %v, want ErrNoLoader naming vkGetInstanceProcAddr", err)
	}
}

// TestNoDriverIsTreatedLikeNoAdapter points the loader at a driver list that
// does not exist (vkCreateInstance then fails with
// VK_ERROR_INCOMPATIBLE_DRIVER) and runs TestDevicesFindsLavapipe in a child
// process: like the gpu package's tests without an adapter, it must skip
// normally and fail under CI, never fail with a Vulkan error.
func TestNoDriverIsTreatedLikeNoAdapter(t *testing.T) {
	noDriver := []string{"VK_ICD_FILENAMES=/nonexistent/rwkv-no-icd.json", "VK_DRIVER_FILES=/nonexistent/rwkv-no-icd.json", "RWKV_REQUIRE_GPU="}
	out, err := testenv.RunSelf(t, "TestDevicesFindsLavapipe", append(noDriver, "CI=")...)
	if err != nil || !strings.Contains(out, "--- SKIP: TestDevicesFindsLavapipe") || !strings.Contains(out, "no usable Vulkan driver") {
		t.Errorf("without a driver and without CI the test must skip naming the missing driver; got %v:\n%s", err, out)
	}
	out, err = testenv.RunSelf(t, "TestDevicesFindsLavapipe", append(noDriver, "CI=1")...)
	if err == nil || !strings.Contains(out, "--- FAIL: TestDevicesFindsLavapipe") || !strings.Contains(out, "fails instead of skipping") {
		t.Errorf("without a driver under CI the test must fail as a missing device; got %v:\n%s", err, out)
	}
}
