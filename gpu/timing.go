package gpu

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/vkinfo"
)

// KernelTime is the time spent in one kernel (by name) over a recording.
type KernelTime struct {
	Name  string
	Calls int
	Total time.Duration
}

// Timing is the per-kernel breakdown of one recording.
type Timing struct {
	// Method is "timestamp-query" (GPU timestamps around each dispatch, in one
	// submit) or "wall-clock" (one submit and wait per dispatch: includes
	// submit and synchronisation overhead, so only relative values mean much).
	Method  string
	Kernels []KernelTime // by Total, largest first
	Total   time.Duration
	Note    string // e.g. how the timestamp period was found
}

func (t Timing) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, total %v", t.Method, t.Total)
	if t.Note != "" {
		fmt.Fprintf(&b, " (%s)", t.Note)
	}
	for _, k := range t.Kernels {
		fmt.Fprintf(&b, "\n  %-24s %5d calls %12v %5.1f%%", k.Name, k.Calls, k.Total, 100*float64(k.Total)/float64(max(t.Total, 1)))
	}
	return b.String()
}

const maxTimedDispatches = wgpu.QuerySetMaxQueries / 2

// SubmitTimed submits the recording like Submit, waits for it, and returns
// the time spent per kernel name. With timestamp queries (HasTimestamps)
// each dispatch runs in its own compute pass between two GPU timestamps;
// otherwise (or beyond 4096 dispatches) each operation is submitted and
// waited for on its own and timed by the wall clock. Either way the
// dispatches do the same work as under Submit.
func (r *Recorder) SubmitTimed() (Timing, error) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	defer r.resetLocked()
	if r.err != nil {
		return Timing{}, r.err
	}
	if d.closed {
		return Timing{}, ErrClosed
	}
	if err := r.checkLive(); err != nil {
		return Timing{}, err
	}
	if d.hasTS && r.dispatches <= maxTimedDispatches {
		return r.timeWithQueries()
	}
	return r.timeWithClock()
}

func (r *Recorder) timeWithClock() (Timing, error) {
	d := r.d
	per := map[string]*KernelTime{}
	var total time.Duration
	for i := range r.ops {
		cmd, err := r.encode(r.ops[i:i+1], nil)
		if err != nil {
			return Timing{}, r.describe(&r.ops[i], i, len(r.ops), err)
		}
		t0 := time.Now()
		d.queue.Submit(cmd)
		d.awaitIdle()
		dt := time.Since(t0)
		cmd.Release()
		d.submits++
		if o := &r.ops[i]; o.kind == opDispatch {
			addTime(per, o.k.name, dt)
			total += dt
		}
	}
	d.dispatches += uint64(r.dispatches)
	return finishTiming("wall-clock", per, total, ""), nil
}

func (r *Recorder) timeWithQueries() (Timing, error) {
	d := r.d
	n := r.dispatches
	if n == 0 {
		return Timing{Method: "timestamp-query"}, nil
	}
	qs, err := d.dev.CreateQuerySet(&wgpu.QuerySetDescriptor{Label: "timing", Type: wgpu.QueryTypeTimestamp, Count: uint32(2 * n)})
	if err != nil {
		return Timing{}, &Error{Op: "submit", Index: -1, Detail: "creating the timestamp query set", Err: err}
	}
	defer qs.Release()
	size := uint64(16 * n)
	resolve, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "timing-resolve", Size: size, Usage: wgpu.BufferUsageQueryResolve | wgpu.BufferUsageCopySrc})
	if err != nil {
		return Timing{}, &Error{Op: "submit", Index: -1, Detail: "creating the timestamp buffer", Err: err}
	}
	defer resolve.Release()
	read, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "timing-read", Size: size, Usage: wgpu.BufferUsageMapRead | wgpu.BufferUsageCopyDst})
	if err != nil {
		return Timing{}, &Error{Op: "submit", Index: -1, Detail: "creating the timestamp readback buffer", Err: err}
	}
	defer read.Release()

	slot := map[int]uint32{} // op index -> first query
	for i, o := range r.ops {
		if o.kind == opDispatch {
			slot[i] = uint32(2 * len(slot))
		}
	}
	cmd, err := r.encode(r.ops, func(enc *wgpu.CommandEncoder, i int, after bool) error {
		q := slot[i]
		if after {
			q++
		}
		return enc.WriteTimestamp(qs, q)
	})
	if err != nil {
		return Timing{}, r.locate(err)
	}
	d.queue.Submit(cmd)
	cmd.Release()
	d.submits++
	d.dispatches += uint64(n)

	err = d.readbackLocked(func(enc *wgpu.CommandEncoder) error {
		if err := enc.ResolveQuerySet(qs, 0, uint32(2*n), resolve, 0); err != nil {
			return err
		}
		return enc.CopyBufferToBuffer(resolve, 0, read, 0, size)
	}, read, size)
	if err != nil {
		return Timing{}, &Error{Op: "read", Index: -1, Detail: "timestamps", Err: err}
	}
	raw := read.GetMappedRange(0, uint(size))
	ticks := make([]uint64, 2*n)
	for i := range ticks {
		ticks[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	if err := read.Unmap(); err != nil {
		return Timing{}, &Error{Op: "read", Index: -1, Detail: "timestamps", Err: err}
	}

	period, note := d.timestampPeriodLocked()
	per := map[string]*KernelTime{}
	var total time.Duration
	for i, o := range r.ops {
		if o.kind != opDispatch {
			continue
		}
		q := slot[i]
		var dt time.Duration
		if ticks[q+1] > ticks[q] {
			dt = time.Duration(float64(ticks[q+1]-ticks[q]) * period)
		}
		addTime(per, o.k.name, dt)
		total += dt
	}
	return finishTiming("timestamp-query", per, total, note), nil
}

// timestampPeriodLocked returns nanoseconds per timestamp tick. wgpu-native
// returns raw ticks and this binding cannot query the period, so on Vulkan
// it comes from vkinfo (the physical device with the same vendor and device
// ids); elsewhere 1 ns is assumed (Metal and D3D12 through wgpu report ns).
func (d *Device) timestampPeriodLocked() (float64, string) {
	if d.tsPeriod > 0 {
		return d.tsPeriod, d.tsPeriodSrc
	}
	d.tsPeriod, d.tsPeriodSrc = 1, "timestamp period assumed 1 ns"
	if d.info.Backend == "vulkan" {
		if devs, err := vkinfo.Devices(); err == nil {
			for _, v := range devs {
				if v.VendorID == d.info.VendorID && v.DeviceID == d.info.DeviceID && v.TimestampPeriodNs > 0 {
					d.tsPeriod = float64(v.TimestampPeriodNs)
					d.tsPeriodSrc = fmt.Sprintf("timestamp period %.4g ns from Vulkan", v.TimestampPeriodNs)
					break
				}
			}
		}
	}
	return d.tsPeriod, d.tsPeriodSrc
}

func addTime(per map[string]*KernelTime, name string, dt time.Duration) {
	k := per[name]
	if k == nil {
		k = &KernelTime{Name: name}
		per[name] = k
	}
	k.Calls++
	k.Total += dt
}

func finishTiming(method string, per map[string]*KernelTime, total time.Duration, note string) Timing {
	t := Timing{Method: method, Total: total, Note: note}
	for _, k := range per {
		t.Kernels = append(t.Kernels, *k)
	}
	sort.Slice(t.Kernels, func(i, j int) bool {
		if t.Kernels[i].Total != t.Kernels[j].Total {
			return t.Kernels[i].Total > t.Kernels[j].Total
		}
		return t.Kernels[i].Name < t.Kernels[j].Name
	})
	return t
}
