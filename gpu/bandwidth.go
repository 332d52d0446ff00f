package gpu

import (
	"fmt"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// readProbeGroups is the number of workgroups of the read kernel: enough to
// fill any GPU, few enough that each invocation loops over many vec4 words.
const readProbeGroups = 1024

// readProbeWG is the read kernel's workgroup size.
const readProbeWG = 256

// readProbe is the streaming-read kernel of bandwidth.wgsl bound to a source
// buffer: each run reads the whole source and writes one sum per workgroup.
type readProbe struct {
	d      *Device
	k      *Kernel
	src    *Buffer // [size/16] vec4<f32>
	out    *Buffer // [readProbeGroups] f32
	params *Buffer
}

// newReadProbe allocates a source buffer of up to maxBytes (bounded by the
// storage-binding limit, a whole number of MiB) and compiles the kernel.
func (d *Device) newReadProbe(maxBytes uint64) (*readProbe, error) {
	size := min(maxBytes, d.MaxBindingSize()) &^ 0xfffff
	if size < 1<<20 {
		return nil, fmt.Errorf("gpu: bandwidth buffer of %d bytes is too small", size)
	}
	src, err := shaders.Source("bandwidth.wgsl", map[string]string{"WG": fmt.Sprint(readProbeWG)})
	if err != nil {
		return nil, err
	}
	p := &readProbe{d: d}
	if p.k, err = d.Kernel("bandwidth.wgsl", src, "read_sum"); err != nil {
		return nil, err
	}
	if p.src, err = d.NewBuffer("bandwidth source", size); err != nil {
		return nil, err
	}
	if p.out, err = d.NewBuffer("bandwidth sums", 4*readProbeGroups); err != nil {
		p.release()
		return nil, err
	}
	if p.params, err = d.Params(uint32(size/16), readProbeGroups*readProbeWG); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

func (p *readProbe) release() {
	for _, b := range []*Buffer{p.src, p.out, p.params} {
		if b != nil {
			b.Release()
		}
	}
}

// run reads the source passes times in one submit and waits for the end.
func (p *readProbe) run(passes int) (time.Duration, error) {
	r := p.d.NewRecorder()
	for i := 0; i < passes; i++ {
		r.Dispatch(p.k, []Binding{{Buf: p.src}, {Buf: p.out}, {Buf: p.params}}, readProbeGroups, 1, 1)
	}
	start := time.Now()
	if err := r.Submit(); err != nil {
		return 0, err
	}
	if err := p.d.Wait(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// ReadBandwidth measures the device's streaming-read bandwidth in bytes per
// second with a read kernel over a buffer of up to maxBytes (bounded by the
// storage-binding limit): the best of reps timed runs after one warm-up, each
// run reading the buffer passes times in one submit.
func (d *Device) ReadBandwidth(maxBytes uint64, reps int) (float64, error) {
	p, err := d.newReadProbe(maxBytes)
	if err != nil {
		return 0, err
	}
	defer p.release()
	const passes = 8
	if _, err := p.run(passes); err != nil {
		return 0, err
	}
	best := time.Duration(0)
	for i := 0; i < max(reps, 1); i++ {
		t, err := p.run(passes)
		if err != nil {
			return 0, err
		}
		if best == 0 || t < best {
			best = t
		}
	}
	if best <= 0 {
		return 0, fmt.Errorf("gpu: bandwidth probe: %d passes over %s took no measurable time", passes, fmtBytes(p.src.Size()))
	}
	return float64(p.src.Size()) * passes / best.Seconds(), nil
}
