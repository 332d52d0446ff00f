//go:build !linux || !cgo

package vkinfo

import "fmt"

// Devices lists the Vulkan physical devices. This build (not Linux, or cgo
// disabled) has no loader support and always returns ErrNoLoader.
func Devices() ([]Device, error) {
	return nil, fmt.Errorf("%w: only supported on Linux with cgo", ErrNoLoader)
}
