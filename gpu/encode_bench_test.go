package gpu

import (
	"testing"
	"time"
)

// BenchmarkEncodeStep measures the host's cost of a decode step's command
// buffer without running it: 88 dispatches (the 0.1B model's count)
// cycling through 7 kernels with their own bind groups, appended from a
// Program and encoded by wgpu (the command buffer is dropped, not
// submitted, so the measurement is not disturbed by a CPU driver running
// the work).
func BenchmarkEncodeStep(b *testing.B) {
	d := openTestDevice(b)
	const steps, n = 88, 64
	var kernels []*Kernel
	for i := 0; i < 7; i++ {
		kernels = append(kernels, elementwise(b, d, "add", 32<<(i%3)))
	}
	in, err := d.NewBuffer("in", 4*n)
	if err != nil {
		b.Fatal(err)
	}
	buf, err := d.NewBuffer("x", 4*n)
	if err != nil {
		b.Fatal(err)
	}
	p, err := d.Params(n, 0)
	if err != nil {
		b.Fatal(err)
	}
	r := d.NewRecorder()
	for i := 0; i < steps; i++ {
		r.Dispatch(kernels[i%7], []Binding{{Buf: in}, {Buf: in}, {Buf: buf}, {Buf: p}}, 1, 1, 1)
	}
	prog, err := r.Program()
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Release()
	var appendT, encodeT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r.Append(prog)
		t1 := time.Now()
		d.mu.Lock()
		cmd, err := r.encode(r.ops, nil)
		d.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Release()
		encodeT += time.Since(t1)
		appendT += t1.Sub(t0)
		r.Reset()
	}
	per := func(t time.Duration) float64 { return float64(t.Nanoseconds()) / float64(b.N*steps) / 1e3 }
	b.ReportMetric(per(appendT), "µs-append/dispatch")
	b.ReportMetric(per(encodeT), "µs-encode/dispatch")
}
