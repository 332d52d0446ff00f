package gpu

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// Binding binds (a range of) a buffer to @group(0) @binding(i), where i is
// the Binding's position in the slice given to Dispatch. A zero Binding
// (Buf == nil) marks a binding number the entry point does not use.
type Binding struct {
	Buf    *Buffer
	Offset uint64 // bytes; a multiple of Limits.MinStorageBufferOffsetAlignment
	Size   uint64 // bytes; 0 = from Offset to the end of the buffer
}

type opKind int

const (
	opDispatch opKind = iota
	opCopy
	opClear
	opReadback
)

type op struct {
	kind    opKind
	k       *Kernel
	group   *wgpu.BindGroup
	binds   []Binding // resolved: Size filled in
	x, y, z uint32
	src     *Buffer // copy source
	dst     *Buffer // copy destination, clear target
	srcOff  uint64
	dstOff  uint64
	size    uint64
	rb      *Readback // opReadback: where the copy goes
	gkey    string    // the bind-group cache key of group
}

// Recorder collects dispatches and copies and submits them as one command
// buffer: consecutive dispatches share one compute pass, copies go between
// passes. Bind groups are made (or taken from the device's cache) at
// Dispatch, so argument errors surface there; wgpu's own checks run at
// Submit. Errors are sticky: the first one is kept, later calls are
// ignored, and Submit (or Err) returns it. A Recorder can be reused after
// Submit or Reset; it is not safe for concurrent use.
type Recorder struct {
	d          *Device
	ops        []op
	err        error
	dispatches int
	pin        *pinToken
	// encodeTime and submitTime are the last Submit's command encoding and
	// queue submission times (see Times).
	encodeTime, submitTime time.Duration
}

// Times returns how long the last Submit spent encoding the command buffer
// (wgpu's work on the host) and in the queue's submit call (on most drivers
// a hand-over; on lavapipe, which runs the commands in that call, the GPU
// work itself).
func (r *Recorder) Times() (encode, submit time.Duration) { return r.encodeTime, r.submitTime }

// pinToken counts a recorder holding unsubmitted operations in d.pending,
// which holds back bind-group cache eviction. It is separate from the
// Recorder so that a cleanup can unpin a recorder dropped without Submit.
type pinToken struct {
	d      *Device
	active bool
}

// NewRecorder starts an empty recording.
func (d *Device) NewRecorder() *Recorder {
	r := &Recorder{d: d, pin: &pinToken{d: d}}
	runtime.AddCleanup(r, func(t *pinToken) {
		t.d.mu.Lock()
		defer t.d.mu.Unlock()
		t.unpinLocked()
	}, r.pin)
	return r
}

// Fail records err as the recording's error (the first one is kept), for
// callers that find a problem while recording; Submit then returns it.
func (r *Recorder) Fail(err error) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// Err is the first error recorded so far.
func (r *Recorder) Err() error { return r.err }

// Len is the number of operations recorded.
func (r *Recorder) Len() int { return len(r.ops) }

// Dispatches is the number of dispatches recorded.
func (r *Recorder) Dispatches() int { return r.dispatches }

func (t *pinToken) pinLocked() {
	if !t.active {
		t.active = true
		t.d.pending++
	}
}

// unpinLocked ends the recording's hold on cached bind groups.
func (t *pinToken) unpinLocked() {
	if t.active {
		t.active = false
		t.d.pending--
		if t.d.pending == 0 && !t.d.closed {
			t.d.groups.collect()
		}
	}
}

// Reset drops everything recorded, and the sticky error.
func (r *Recorder) Reset() {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.resetLocked()
}

func (r *Recorder) resetLocked() {
	for _, o := range r.ops {
		if o.rb != nil && !o.rb.submitted {
			o.rb.fail(fmt.Errorf("the recording holding this read-back was reset before Submit"))
			r.d.returnStagingLocked(o.rb.st, o.rb.stSize)
			o.rb.st = nil
		}
	}
	r.ops = r.ops[:0]
	r.err = nil
	r.dispatches = 0
	r.pin.unpinLocked()
}

func (r *Recorder) fail(o *op, err error) {
	if r.err != nil {
		return
	}
	if e, ok := err.(*Error); ok {
		r.err = e
		return
	}
	r.err = r.describe(o, len(r.ops), len(r.ops)+1, err)
}

// describe wraps err with what operation i (of n) involved.
func (r *Recorder) describe(o *op, i, n int, err error) *Error {
	e := &Error{Index: i, Of: n, Err: err}
	switch o.kind {
	case opDispatch:
		e.Op = "dispatch"
		if o.k != nil {
			e.Kernel = o.k.name
			e.Detail = fmt.Sprintf("entry %s, workgroups %dx%dx%d, bindings %s", o.k.p.entry, o.x, o.y, o.z, bindingList(o.binds))
		}
	case opCopy:
		e.Op = "copy"
		e.Detail = fmt.Sprintf("%s[%d:] -> %s[%d:], %d bytes", o.src, o.srcOff, o.dst, o.dstOff, o.size)
	case opClear:
		e.Op = "clear"
		e.Detail = fmt.Sprintf("%s[%d:], %d bytes", o.dst, o.dstOff, o.size)
	case opReadback:
		e.Op = "read back"
		e.Detail = fmt.Sprintf("%s[%d:], %d bytes", o.src, o.srcOff, o.size)
	}
	return e
}

func bindingList(bs []Binding) string {
	var parts []string
	for i, b := range bs {
		if b.Buf == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d=%q[%d:+%d]", i, b.Buf.label, b.Offset, b.Size))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Dispatch records k over x*y*z workgroups with the given bindings (see
// Binding). Each count must be <= Limits.MaxComputeWorkgroupsPerDimension:
// use Device.Grid for large 1-D ranges.
func (r *Recorder) Dispatch(k *Kernel, bindings []Binding, x, y, z uint32) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.err != nil {
		return
	}
	o := op{kind: opDispatch, k: k, x: x, y: y, z: z, binds: make([]Binding, len(bindings))}
	copy(o.binds, bindings)
	if d.closed {
		r.fail(&o, ErrClosed)
		return
	}
	if k == nil {
		r.fail(&o, fmt.Errorf("nil kernel"))
		return
	}
	for i := range o.binds {
		b := &o.binds[i]
		if b.Buf == nil {
			continue
		}
		if err := d.usable(b.Buf); err != nil {
			r.fail(&o, fmt.Errorf("binding %d: %w", i, err))
			return
		}
		if b.Offset > b.Buf.alloc {
			r.fail(&o, fmt.Errorf("binding %d: offset %d past the end of buffer %s", i, b.Offset, b.Buf))
			return
		}
		if b.Size == 0 {
			b.Size = b.Buf.alloc - b.Offset
		}
		if b.Buf.usage&Storage != 0 && b.Size > d.limits.MaxStorageBufferBindingSize {
			r.fail(&o, fmt.Errorf("binding %d covers %d bytes of buffer %s, above this device's maxStorageBufferBindingSize (%s): split the tensor or bind sub-ranges (Binding.Offset/Size)",
				i, b.Size, b.Buf, fmtBytes(d.limits.MaxStorageBufferBindingSize)))
			return
		}
	}
	if lim := d.limits.MaxComputeWorkgroupsPerDimension; x > lim || y > lim || z > lim {
		r.fail(&o, fmt.Errorf("workgroup count above this device's maxComputeWorkgroupsPerDimension (%d): fold it with Device.Grid", lim))
		return
	}
	g, key, err := d.bindGroupLocked(k, o.binds)
	if err != nil {
		r.fail(&o, err)
		return
	}
	o.group, o.gkey = g, key
	r.pin.pinLocked()
	r.ops = append(r.ops, o)
	r.dispatches++
}

// Copy records a buffer-to-buffer copy of size bytes (offsets and size are
// multiples of 4).
func (r *Recorder) Copy(src *Buffer, srcOff uint64, dst *Buffer, dstOff uint64, size uint64) {
	r.record(op{kind: opCopy, src: src, srcOff: srcOff, dst: dst, dstOff: dstOff, size: size})
}

// Clear records zeroing size bytes of buf from offset (multiples of 4);
// size 0 clears to the end.
func (r *Recorder) Clear(buf *Buffer, offset, size uint64) {
	if size == 0 && buf != nil && offset <= buf.alloc {
		size = buf.alloc - offset
	}
	r.record(op{kind: opClear, dst: buf, dstOff: offset, size: size})
}

func (r *Recorder) record(o op) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.err != nil {
		return
	}
	if d.closed {
		r.fail(&o, ErrClosed)
		return
	}
	bufs := []*Buffer{o.dst}
	if o.kind == opCopy {
		bufs = append(bufs, o.src)
	}
	for _, b := range bufs {
		if err := d.usable(b); err != nil {
			r.fail(&o, err)
			return
		}
	}
	r.pin.pinLocked()
	r.ops = append(r.ops, o)
}

// Submit encodes the recording into one command buffer and submits it; it
// does not wait (Device.Read and Device.Wait do). On error nothing is
// submitted and the error names the failing operation, its kernel and its
// buffers. Either way the recorder is reset.
func (r *Recorder) Submit() error {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	defer r.resetLocked()
	if r.err != nil {
		return r.err
	}
	if d.closed {
		return ErrClosed
	}
	if len(r.ops) == 0 {
		return nil
	}
	if err := r.checkLive(); err != nil {
		return err
	}
	start := time.Now()
	cmd, err := r.encode(r.ops, nil)
	if err != nil {
		return r.locate(err)
	}
	defer cmd.Release()
	encoded := time.Now()
	d.queue.Submit(cmd)
	r.encodeTime, r.submitTime = encoded.Sub(start), time.Since(encoded)
	d.submits++
	d.dispatches += uint64(r.dispatches)
	for _, o := range r.ops {
		if o.rb != nil {
			o.rb.markSubmitted()
		}
	}
	return nil
}

// DryRun encodes the recording into a command buffer as Submit would, then
// drops it instead of submitting it, resets the recorder and returns how
// long the encoding took: the host's cost of a submission, measured
// without running it (on a CPU driver, running it would compete with the
// host for the same cores and caches).
func (r *Recorder) DryRun() (time.Duration, error) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	defer r.resetLocked()
	if r.err != nil {
		return 0, r.err
	}
	if d.closed {
		return 0, ErrClosed
	}
	start := time.Now()
	cmd, err := r.encode(r.ops, nil)
	if err != nil {
		return 0, r.locate(err)
	}
	cmd.Release()
	return time.Since(start), nil
}

// checkLive refuses to submit operations on buffers released since they
// were recorded (the native handles are gone).
func (r *Recorder) checkLive() error {
	for i := range r.ops {
		o := &r.ops[i]
		for _, b := range o.binds {
			if b.Buf != nil && b.Buf.released {
				return r.describe(o, i, len(r.ops), fmt.Errorf("buffer %s was released before Submit", b.Buf))
			}
		}
		for _, b := range []*Buffer{o.src, o.dst} {
			if b != nil && b.released {
				return r.describe(o, i, len(r.ops), fmt.Errorf("buffer %s was released before Submit", b))
			}
		}
	}
	return nil
}

// stamp says where to write timestamps around operation i (nil: none).
type stamper func(enc *wgpu.CommandEncoder, i int, after bool) error

// encode records ops into a new command encoder and finishes it. With ts
// set, every dispatch gets its own compute pass and timestamps around it.
func (r *Recorder) encode(ops []op, ts stamper) (*wgpu.CommandBuffer, error) {
	d := r.d
	enc, err := d.dev.CreateCommandEncoder(&wgpu.CommandEncoderDescriptor{Label: "recorder"})
	if err != nil {
		return nil, err
	}
	defer enc.Release()
	var pass *wgpu.ComputePassEncoder
	// The pass keeps its pipeline and bind group between dispatches:
	// setting the same again is skipped (each call crosses into wgpu).
	var lastPipe *wgpu.ComputePipeline
	var lastGroup *wgpu.BindGroup
	endPass := func() error {
		if pass == nil {
			return nil
		}
		err := pass.End()
		pass.Release()
		pass, lastPipe, lastGroup = nil, nil, nil
		return err
	}
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opDispatch:
			if ts != nil {
				if err := ts(enc, i, false); err != nil {
					return nil, err
				}
			}
			if pass == nil {
				pass = enc.BeginComputePass(nil)
			}
			if o.k.p.pipe != lastPipe {
				pass.SetPipeline(o.k.p.pipe)
				lastPipe, lastGroup = o.k.p.pipe, nil
			}
			if o.group != nil && o.group != lastGroup {
				pass.SetBindGroup(0, o.group, nil)
				lastGroup = o.group
			}
			pass.DispatchWorkgroups(o.x, o.y, o.z)
			if ts != nil {
				if err := endPass(); err != nil {
					return nil, err
				}
				if err := ts(enc, i, true); err != nil {
					return nil, err
				}
			}
		case opCopy, opClear, opReadback:
			if err := endPass(); err != nil {
				return nil, err
			}
			switch o.kind {
			case opCopy:
				err = enc.CopyBufferToBuffer(o.src.buf, o.srcOff, o.dst.buf, o.dstOff, o.size)
			case opReadback:
				err = enc.CopyBufferToBuffer(o.src.buf, o.srcOff, o.rb.st, 0, o.size)
			default:
				err = enc.ClearBuffer(o.dst.buf, o.dstOff, o.size)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if err := endPass(); err != nil {
		return nil, err
	}
	return enc.Finish(nil)
}

// locate turns an encoding error into one naming the failing operation, by
// encoding each operation on its own (nothing is submitted).
func (r *Recorder) locate(err error) error {
	for i := range r.ops {
		cmd, e := r.encode(r.ops[i:i+1], nil)
		if e != nil {
			return r.describe(&r.ops[i], i, len(r.ops), e)
		}
		cmd.Release()
	}
	var names []string
	for _, o := range r.ops {
		if o.kind == opDispatch {
			names = append(names, o.k.name)
		}
	}
	return &Error{Op: "submit", Index: -1, Detail: "recording of kernels " + strings.Join(names, ", "), Err: err}
}

// ---- bind group cache -----------------------------------------------------

// bindGroupCache keeps bind groups by (pipeline, buffers, offsets, sizes) so
// a repeated token step reuses them. It is emptied when it outgrows
// bindGroupCacheMax, but only while no Recorder holds unsubmitted
// operations (a recorded operation refers to its bind group until encoded).
type bindGroupCache struct {
	m     map[string]*cachedGroup
	byBuf map[uint64][]string
}

type cachedGroup struct {
	g    *wgpu.BindGroup
	bufs []uint64
	pins int // Programs holding it: collect keeps it
}

const bindGroupCacheMax = 4096

func newBindGroupCache() bindGroupCache {
	return bindGroupCache{m: map[string]*cachedGroup{}, byBuf: map[uint64][]string{}}
}

func (c *bindGroupCache) len() int { return len(c.m) }

// dropBuffer releases the bind groups using buffer id (which is being
// released, so that its memory can go). Pending recordings that refer to
// them are refused by checkLive before they are encoded.
func (c *bindGroupCache) dropBuffer(id uint64) {
	for _, key := range c.byBuf[id] {
		if e, ok := c.m[key]; ok {
			delete(c.m, key)
			e.g.Release()
		}
	}
	delete(c.byBuf, id)
}

// collect empties the cache when it has grown past its bound. Call only
// when no recording is pending (recorded operations refer to their groups).
func (c *bindGroupCache) collect() {
	if len(c.m) <= bindGroupCacheMax {
		return
	}
	for key, e := range c.m {
		if e.pins == 0 {
			delete(c.m, key)
			e.g.Release()
		}
	}
	for id, keys := range c.byBuf {
		kept := keys[:0]
		for _, k := range keys {
			if _, ok := c.m[k]; ok {
				kept = append(kept, k)
			}
		}
		if len(kept) == 0 {
			delete(c.byBuf, id)
		} else {
			c.byBuf[id] = kept
		}
	}
}

func (c *bindGroupCache) releaseAll() {
	for _, e := range c.m {
		e.g.Release()
	}
	c.m = map[string]*cachedGroup{}
	c.byBuf = map[uint64][]string{}
}

func (d *Device) bindGroupLocked(k *Kernel, binds []Binding) (*wgpu.BindGroup, string, error) {
	if k.p.layout == nil {
		return nil, "", nil
	}
	key := make([]byte, 0, 8+len(binds)*24)
	key = binary.LittleEndian.AppendUint64(key, k.p.id)
	var entries []wgpu.BindGroupEntry
	var ids []uint64
	for i, b := range binds {
		if b.Buf == nil {
			continue
		}
		key = binary.LittleEndian.AppendUint32(key, uint32(i))
		key = binary.LittleEndian.AppendUint64(key, b.Buf.id)
		key = binary.LittleEndian.AppendUint64(key, b.Offset)
		key = binary.LittleEndian.AppendUint64(key, b.Size)
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i), Buffer: b.Buf.buf, Offset: b.Offset, Size: b.Size})
		ids = append(ids, b.Buf.id)
	}
	if e, ok := d.groups.m[string(key)]; ok {
		return e.g, string(key), nil
	}
	g, err := d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: k.name, Layout: k.p.layout, Entries: entries})
	if err != nil {
		return nil, "", err
	}
	d.groups.m[string(key)] = &cachedGroup{g: g, bufs: ids}
	for _, id := range ids {
		d.groups.byBuf[id] = append(d.groups.byBuf[id], string(key))
	}
	return g, string(key), nil
}
