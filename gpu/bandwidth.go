package gpu

import (
	"fmt"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// ReadBandwidth measures the device's streaming-read bandwidth in bytes per
// second with a read kernel over a buffer of up to maxBytes (bounded by the
// storage-binding limit): the best of reps timed runs after one warm-up, each
// run reading the buffer passes times in one submit.
func (d *Device) ReadBandwidth(maxBytes uint64, reps int) (float64, error) {
	size := min(maxBytes, d.MaxBindingSize()) &^ 0xfffff
	if size < 1<<20 {
		return 0, fmt.Errorf("gpu: bandwidth buffer of %d bytes is too small", size)
	}
	src, err := shaders.Source("bandwidth.wgsl", map[string]string{"WG": "256"})
	if err != nil {
		return 0, err
	}
	k, err := d.Kernel("bandwidth.wgsl", src, "read_sum")
	if err != nil {
		return 0, err
	}
	buf, err := d.NewBuffer("bandwidth source", size)
	if err != nil {
		return 0, err
	}
	defer buf.Release()
	// Enough workgroups to fill any GPU, few enough that each invocation
	// loops over many vec4 words.
	const groups = 1024
	out, err := d.NewBuffer("bandwidth sums", 4*groups)
	if err != nil {
		return 0, err
	}
	defer out.Release()
	n := uint32(size / 16)
	params, err := d.Params(n, groups*256)
	if err != nil {
		return 0, err
	}
	const passes = 8
	run := func() (time.Duration, error) {
		r := d.NewRecorder()
		for i := 0; i < passes; i++ {
			r.Dispatch(k, []Binding{{Buf: buf}, {Buf: out}, {Buf: params}}, groups, 1, 1)
		}
		start := time.Now()
		if err := r.Submit(); err != nil {
			return 0, err
		}
		if err := d.Wait(); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	if _, err := run(); err != nil {
		return 0, err
	}
	best := time.Duration(0)
	for i := 0; i < max(reps, 1); i++ {
		t, err := run()
		if err != nil {
			return 0, err
		}
		if best == 0 || t < best {
			best = t
		}
	}
	return float64(size) * passes / best.Seconds(), nil
}
