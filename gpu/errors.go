package gpu

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNoAdapter is returned by Open (wrapped) when no WebGPU adapter exists.
	ErrNoAdapter = errors.New("gpu: no WebGPU adapter found (a Vulkan, Metal or D3D12 driver is needed; on Linux without a GPU install Mesa's lavapipe: mesa-vulkan-drivers)")
	// ErrClosed is returned by every method of a closed Device.
	ErrClosed = errors.New("gpu: device is closed")

	errInstance = errors.New("gpu: wgpuCreateInstance failed")
)

// Error is a failure of one GPU operation, with what was involved. Err holds
// the underlying cause: wgpu's validation text, or one of our own checks.
type Error struct {
	Op     string // "compile", "dispatch", "copy", "clear", "alloc", "write", "read", "submit"
	Kernel string // kernel name ("" when no kernel is involved)
	Index  int    // position of the operation in its recording, -1 if none
	Of     int    // number of operations in that recording
	Detail string // entry point, workgroups, bindings or buffers involved
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gpu: ")
	b.WriteString(e.Op)
	if e.Index >= 0 {
		fmt.Fprintf(&b, " #%d of %d", e.Index, e.Of)
	}
	if e.Kernel != "" {
		fmt.Fprintf(&b, " kernel %q", e.Kernel)
	}
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(cleanWGPU(e.Err))
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// cleanWGPU drops the Go binding's "wgpu.(*X).Y(): " prefix and the blank
// lines of wgpu's multi-line messages, keeping all of the text.
func cleanWGPU(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if strings.HasPrefix(s, "wgpu.(") {
		if i := strings.Index(s, "): "); i >= 0 {
			s = s[i+3:]
		}
	}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " "))
		}
	}
	return strings.Join(lines, "\n")
}
