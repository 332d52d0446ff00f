//go:build linux && cgo

package vkinfo

import (
	"errors"
	"strings"
	"testing"
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
