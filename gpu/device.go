package gpu

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// AutoAdapter asks Open for the best adapter, or the one RWKV_GPU names.
const AutoAdapter = -1

// Options configure Open.
type Options struct {
	// Adapter is an index into Adapters(), or AutoAdapter (-1): the best
	// adapter unless the environment variable RWKV_GPU holds an index or a
	// substring of an adapter's "name backend type".
	Adapter int
	// Log receives one "using adapter ..." line and other notes; nil = quiet.
	Log io.Writer
}

// Device is an open WebGPU device with its queue and caches. Its methods are
// safe for concurrent use (they serialise on one lock); a Recorder is not.
type Device struct {
	mu     sync.Mutex
	closed bool

	info   AdapterInfo
	limits Limits // what the device actually got
	log    io.Writer

	instance *wgpu.Instance
	adapter  *wgpu.Adapter
	dev      *wgpu.Device
	queue    *wgpu.Queue
	hasTS    bool

	nextID    uint64
	buffers   map[uint64]*Buffer // live buffers, released by Close
	allocated uint64
	peak      uint64
	params    map[string]*Buffer // Params cache: content -> buffer

	modules   map[[32]byte]*wgpu.ShaderModule
	pipelines map[pipeKey]*pipeline
	groups    bindGroupCache
	pending   int // recorders holding unsubmitted operations

	// stagingFree pools Readback staging buffers by size class.
	stagingFree map[uint64][]*wgpu.Buffer

	dispatches uint64
	submits    uint64

	tsPeriod    float64 // ns per timestamp tick, 0 until looked up
	tsPeriodSrc string
}

// Open opens a device on the chosen adapter, requesting the adapter's own
// limits for storage-binding and buffer sizes (not WebGPU's 128/256 MiB
// defaults), its workgroup limits and, when available, timestamp queries.
func Open(opts Options) (*Device, error) {
	setLogLevel()
	inst, err := newInstance()
	if err != nil {
		return nil, err
	}
	infos, handles := enumerate(inst)
	release := func(keep int) {
		for i, h := range handles {
			if i != keep {
				h.Release()
			}
		}
	}
	idx, err := pickAdapter(infos, opts.Adapter, os.Getenv("RWKV_GPU"))
	if err != nil {
		release(-1)
		inst.Release()
		return nil, err
	}
	release(idx)
	ad, info := handles[idx], infos[idx]

	desc := &wgpu.DeviceDescriptor{
		Label:          "rwkv-gpu",
		RequiredLimits: &wgpu.RequiredLimits{Limits: requiredLimits(ad.GetLimits().Limits)},
	}
	if info.Timestamps {
		desc.RequiredFeatures = []wgpu.FeatureName{wgpu.FeatureNameTimestampQuery}
	}
	dev, tries, err := retry(4, 50*time.Millisecond, time.Sleep, func() (*wgpu.Device, error) {
		return ad.RequestDevice(desc)
	})
	if err != nil {
		ad.Release()
		inst.Release()
		return nil, fmt.Errorf("gpu: requesting a device on adapter %s failed after %d tries: %w", info, tries, err)
	}
	d := &Device{
		info:      info,
		limits:    limitsFrom(dev.GetLimits().Limits),
		log:       opts.Log,
		instance:  inst,
		adapter:   ad,
		dev:       dev,
		queue:     dev.GetQueue(),
		hasTS:     info.Timestamps && dev.HasFeature(wgpu.FeatureNameTimestampQuery),
		buffers:   map[uint64]*Buffer{},
		params:    map[string]*Buffer{},
		modules:   map[[32]byte]*wgpu.ShaderModule{},
		pipelines: map[pipeKey]*pipeline{},
		groups:    newBindGroupCache(),
	}
	l := d.limits
	drv := ""
	if info.Driver != "" {
		drv = " (" + info.Driver + ")"
	}
	d.logf("using adapter %s%s; storage binding %s, buffer %s, workgroup storage %d B, %d invocations, %d storage buffers/stage, timestamps %v",
		info, drv, fmtBytes(l.MaxStorageBufferBindingSize), fmtBytes(l.MaxBufferSize),
		l.MaxComputeWorkgroupStorageSize, l.MaxComputeInvocationsPerWorkgroup, l.MaxStorageBuffersPerShaderStage, d.hasTS)
	if tries > 1 {
		d.logf("RequestDevice succeeded on try %d", tries)
	}
	return d, nil
}

// requiredLimits builds the limits to request: WebGPU defaults everywhere
// ("undefined") except the ones we need raised to the adapter's values. An
// adapter value of "undefined" (no bound) must not be passed through, since
// as a request it would mean the default: it becomes a large concrete value.
// (Passing the adapter's whole Limits fails: the binding reads the
// push-constant limit from uninitialised memory.)
func requiredLimits(a wgpu.Limits) wgpu.Limits {
	l := wgpu.DefaultLimits()
	u64 := func(v, unbounded uint64) uint64 {
		if v == wgpu.LimitU64Undefined {
			return unbounded
		}
		return v
	}
	u32 := func(v uint32) uint32 {
		if v == wgpu.LimitU32Undefined {
			return wgpu.LimitU32Undefined // keep the default
		}
		return v
	}
	// wgpu stores the binding size as u32.
	l.MaxStorageBufferBindingSize = min(u64(a.MaxStorageBufferBindingSize, math.MaxUint32), math.MaxUint32)
	l.MaxBufferSize = u64(a.MaxBufferSize, 1<<46)
	l.MaxComputeWorkgroupStorageSize = u32(a.MaxComputeWorkgroupStorageSize)
	l.MaxComputeInvocationsPerWorkgroup = u32(a.MaxComputeInvocationsPerWorkgroup)
	l.MaxComputeWorkgroupSizeX = u32(a.MaxComputeWorkgroupSizeX)
	l.MaxComputeWorkgroupSizeY = u32(a.MaxComputeWorkgroupSizeY)
	l.MaxComputeWorkgroupSizeZ = u32(a.MaxComputeWorkgroupSizeZ)
	l.MaxComputeWorkgroupsPerDimension = u32(a.MaxComputeWorkgroupsPerDimension)
	l.MaxStorageBuffersPerShaderStage = u32(a.MaxStorageBuffersPerShaderStage)
	return l
}

// retry calls f up to attempts times, sleeping backoff, 2*backoff, ...
// between failures. It returns the result, the number of calls made and the
// last error (which lists every failure).
func retry[T any](attempts int, backoff time.Duration, sleep func(time.Duration), f func() (T, error)) (T, int, error) {
	var errs []error
	for i := 1; ; i++ {
		v, err := f()
		if err == nil {
			return v, i, nil
		}
		errs = append(errs, fmt.Errorf("try %d: %w", i, err))
		if i >= attempts {
			var zero T
			return zero, i, errors.Join(errs...)
		}
		sleep(backoff << (i - 1))
	}
}

// Info describes the adapter the device runs on.
func (d *Device) Info() AdapterInfo { return d.info }

// Limits are the limits the device was created with.
func (d *Device) Limits() Limits { return d.limits }

// MaxBindingSize is the largest byte range one storage binding may cover
// (maxStorageBufferBindingSize; 128 MiB on lavapipe). Bigger tensors must be
// split across bindings or dispatches.
func (d *Device) MaxBindingSize() uint64 { return d.limits.MaxStorageBufferBindingSize }

// HasTimestamps reports whether GPU timestamp queries are available, so
// that SubmitTimed measures on the GPU rather than by wall clock.
func (d *Device) HasTimestamps() bool { return d.hasTS }

// DispatchCount is the number of dispatches submitted so far.
func (d *Device) DispatchCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dispatches
}

// SubmitCount is the number of queue submissions so far (each Submit of a
// non-empty Recorder is one; reads add their own).
func (d *Device) SubmitCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.submits
}

// Wait blocks until all submitted GPU work has finished.
func (d *Device) Wait() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.awaitIdle()
	return nil
}

// Flush submits the writes queued so far (wgpu stages each Write until the
// next submission) and waits for the GPU to finish them, so that their
// staging memory is freed. Uploads call it to bound their host memory.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	enc, err := d.dev.CreateCommandEncoder(&wgpu.CommandEncoderDescriptor{Label: "flush"})
	if err != nil {
		return err
	}
	defer enc.Release()
	cmd, err := enc.Finish(nil)
	if err != nil {
		return err
	}
	defer cmd.Release()
	d.queue.Submit(cmd)
	d.submits++
	d.awaitIdle()
	return nil
}

// Close waits for the GPU, then releases everything the device owns:
// bind groups, pipelines, shader modules, buffers (any *Buffer still held
// becomes unusable), the queue, the device, the adapter and the instance.
// It is safe to call more than once.
func (d *Device) Close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	d.awaitIdle()
	d.groups.releaseAll()
	for k, p := range d.pipelines {
		p.release()
		delete(d.pipelines, k)
	}
	for k, m := range d.modules {
		m.Release()
		delete(d.modules, k)
	}
	for _, b := range d.buffers {
		b.releaseLocked()
	}
	d.params = nil
	for _, free := range d.stagingFree {
		for _, st := range free {
			st.Release()
		}
	}
	d.stagingFree = nil
	d.queue.Release()
	d.dev.Release()
	d.adapter.Release()
	d.instance.Release()
	d.queue, d.dev, d.adapter, d.instance = nil, nil, nil, nil
}

func (d *Device) logf(format string, args ...any) {
	if d.log != nil {
		fmt.Fprintf(d.log, "gpu: "+format+"\n", args...)
	}
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
