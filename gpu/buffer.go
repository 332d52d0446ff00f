package gpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"
)

// Usage says how a buffer is bound. Every buffer can also be written and
// read (copy source and destination), whatever its usage.
type Usage uint32

const (
	// Storage buffers are bound as var<storage> (the default).
	Storage = Usage(wgpu.BufferUsageStorage)
	// Uniform buffers are bound as var<uniform> (parameter blocks, <= 64 KiB).
	Uniform = Usage(wgpu.BufferUsageUniform)
)

// Buffer is a GPU buffer owned by a Device.
type Buffer struct {
	dev      *Device
	buf      *wgpu.Buffer
	id       uint64
	label    string
	size     uint64 // as requested
	alloc    uint64 // allocated: size rounded up to 4 (16 for uniforms), at least 4
	usage    Usage
	readOnly bool // Params buffers: shared, never written or released by users
	released bool
}

// Label is the name given at creation; errors use it.
func (b *Buffer) Label() string { return b.label }

// Size is the size requested at creation (the allocation may be padded).
func (b *Buffer) Size() uint64 { return b.size }

func (b *Buffer) String() string { return fmt.Sprintf("%q (%s)", b.label, fmtBytes(b.size)) }

// Release frees the buffer (the GPU memory goes once pending work is done).
// It is idempotent, a no-op after Device.Close, and ignored for the shared
// buffers returned by Params.
func (b *Buffer) Release() {
	if b == nil || b.readOnly {
		return
	}
	d := b.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	b.releaseLocked()
}

func (b *Buffer) releaseLocked() {
	if b.released {
		return
	}
	b.released = true
	d := b.dev
	d.groups.dropBuffer(b.id)
	b.buf.Release()
	b.buf = nil
	delete(d.buffers, b.id)
	d.allocated -= b.alloc
}

func (d *Device) usable(b *Buffer) error {
	if b == nil {
		return fmt.Errorf("nil buffer")
	}
	if b.dev != d {
		return fmt.Errorf("buffer %s belongs to another device", b)
	}
	if b.released {
		return fmt.Errorf("buffer %s was released", b)
	}
	return nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// NewBuffer allocates a zero-filled buffer of size bytes. usage defaults to
// Storage. Sizes above the device's maxBufferSize are refused; storage
// buffers above MaxBindingSize are allowed but can only be bound in
// sub-ranges (Binding.Offset/Size).
func (d *Device) NewBuffer(label string, size uint64, usage ...Usage) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.newBufferLocked(label, size, usage...)
}

func (d *Device) newBufferLocked(label string, size uint64, usage ...Usage) (*Buffer, error) {
	if d.closed {
		return nil, ErrClosed
	}
	var u Usage
	for _, x := range usage {
		u |= x
	}
	if u == 0 {
		u = Storage
	}
	alloc := max(alignUp(size, 4), 4)
	if u&Uniform != 0 {
		alloc = alignUp(alloc, 16)
	}
	fail := func(err error) (*Buffer, error) {
		return nil, &Error{Op: "alloc", Index: -1, Detail: fmt.Sprintf("buffer %q, %s", label, fmtBytes(size)), Err: err}
	}
	if alloc > d.limits.MaxBufferSize {
		return fail(fmt.Errorf("%d bytes exceed this device's maxBufferSize (%s)", alloc, fmtBytes(d.limits.MaxBufferSize)))
	}
	var wb *wgpu.Buffer
	err := guard(d.dev, func() (err error) {
		wb, err = d.dev.CreateBuffer(&wgpu.BufferDescriptor{
			Label: label,
			Size:  alloc,
			Usage: wgpu.BufferUsage(u) | wgpu.BufferUsageCopySrc | wgpu.BufferUsageCopyDst,
		})
		return err
	})
	if err != nil {
		if wb != nil {
			wb.Release()
		}
		return fail(err)
	}
	d.nextID++
	b := &Buffer{dev: d, buf: wb, id: d.nextID, label: label, size: size, alloc: alloc, usage: u}
	d.buffers[b.id] = b
	d.allocated += alloc
	d.peak = max(d.peak, d.allocated)
	return b, nil
}

// NewBufferFrom allocates a buffer holding data (padded with zeros to a
// multiple of 4 bytes). usage defaults to Storage.
func (d *Device) NewBufferFrom(label string, data []byte, usage ...Usage) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := d.newBufferLocked(label, uint64(len(data)), usage...)
	if err != nil {
		return nil, err
	}
	if err := d.writeLocked(b, 0, data); err != nil {
		b.releaseLocked()
		return nil, err
	}
	return b, nil
}

// NewBufferF32 allocates a storage buffer holding v.
func (d *Device) NewBufferF32(label string, v []float32) (*Buffer, error) {
	return d.NewBufferFrom(label, F32Bytes(v))
}

// NewBufferU32 allocates a storage buffer holding v.
func (d *Device) NewBufferU32(label string, v []uint32) (*Buffer, error) {
	return d.NewBufferFrom(label, U32Bytes(v))
}

// Uniform allocates a uniform buffer holding data (padded to 16 bytes), for
// parameters that change between submits: rewrite it with Write. The value
// seen by a dispatch is the buffer's content when the recording is
// submitted, so one recording needs one buffer per distinct value (see
// Params for constant parameters).
func (d *Device) Uniform(label string, data []byte) (*Buffer, error) {
	return d.NewBufferFrom(label, data, Uniform)
}

// Params returns a read-only uniform buffer holding the given 4-byte words
// (a WGSL parameter struct of u32/i32/f32 fields; use math.Float32bits for
// f32). Buffers are shared by content for the device's lifetime, so the
// same parameters always give the same buffer and the bind-group cache
// hits. Do not Write or Release them.
func (d *Device) Params(words ...uint32) (*Buffer, error) {
	data := U32Bytes(words)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	key := string(data)
	if b, ok := d.params[key]; ok {
		return b, nil
	}
	b, err := d.newBufferLocked(fmt.Sprintf("params%v", words), uint64(len(data)), Uniform)
	if err != nil {
		return nil, err
	}
	if err := d.writeLocked(b, 0, data); err != nil {
		b.releaseLocked()
		return nil, err
	}
	b.readOnly = true
	d.params[key] = b
	return b, nil
}

// ParamsOf is Params for a typed parameter block: v is a struct (or a
// pointer to one) of uint32, int32 and float32 fields, nested structs and
// arrays of them, mirroring a WGSL struct field by field; it is encoded
// little-endian without padding, which matches WGSL's layout when every
// nested struct and array element starts at a multiple of 16 bytes (the
// engine's layout test checks each block against its WGSL declaration).
func (d *Device) ParamsOf(v any) (*Buffer, error) {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		return nil, fmt.Errorf("gpu: encoding parameter block %T: %w", v, err)
	}
	if b.Len()%4 != 0 {
		return nil, fmt.Errorf("gpu: parameter block %T is %d bytes, not whole 4-byte words", v, b.Len())
	}
	words := make([]uint32, b.Len()/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(b.Bytes()[4*i:])
	}
	return d.Params(words...)
}

// Write copies data into buf at offset (both multiples of 4, except that a
// write ending exactly at the buffer's requested size may have any length:
// it is zero-padded into the allocation). The write is ordered before any
// later Submit.
func (d *Device) Write(buf *Buffer, offset uint64, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writeLocked(buf, offset, data)
}

// WriteF32 writes v at byte offset.
func (d *Device) WriteF32(buf *Buffer, offset uint64, v []float32) error {
	return d.Write(buf, offset, F32Bytes(v))
}

// WriteU32 writes v at byte offset.
func (d *Device) WriteU32(buf *Buffer, offset uint64, v []uint32) error {
	return d.Write(buf, offset, U32Bytes(v))
}

const writeChunk = 32 << 20 // bounds wgpu's staging copy per call

func (d *Device) writeLocked(b *Buffer, offset uint64, data []byte) error {
	if d.closed {
		return ErrClosed
	}
	fail := func(err error) error {
		return &Error{Op: "write", Index: -1, Detail: fmt.Sprintf("buffer %s, offset %d, %d bytes", b, offset, len(data)), Err: err}
	}
	if err := d.usable(b); err != nil {
		return fail(err)
	}
	if b.readOnly {
		return fail(fmt.Errorf("Params buffers are read-only"))
	}
	n := uint64(len(data))
	if offset%4 != 0 {
		return fail(fmt.Errorf("offset must be a multiple of 4"))
	}
	if offset+n > b.size {
		return fail(fmt.Errorf("write past the end (buffer is %d bytes)", b.size))
	}
	if n%4 != 0 {
		if offset+n != b.size {
			return fail(fmt.Errorf("length must be a multiple of 4 unless the write ends the buffer"))
		}
		padded := make([]byte, alignUp(n, 4))
		copy(padded, data)
		data = padded
	}
	for len(data) > 0 {
		c := data[:min(len(data), writeChunk)]
		err := guard(d.dev, func() error { return d.queue.WriteBuffer(b.buf, offset, c) })
		if err != nil {
			return fail(err)
		}
		data = data[len(c):]
		offset += uint64(len(c))
	}
	return nil
}

// Read copies size bytes at offset (a multiple of 4) out of buf, after all
// work submitted before it has finished: a ReadBack submitted on its own.
func (d *Device) Read(buf *Buffer, offset, size uint64) ([]byte, error) {
	r := d.NewRecorder()
	rb := r.ReadBack(buf, offset, size)
	if err := r.Submit(); err != nil {
		return nil, err
	}
	return rb.Wait()
}

// readbackLocked records copy into a fresh encoder, submits it, maps the
// first n bytes of st for reading and waits; the caller reads and unmaps.
func (d *Device) readbackLocked(copy func(*wgpu.CommandEncoder) error, st *wgpu.Buffer, n uint64) error {
	enc, err := d.dev.CreateCommandEncoder(&wgpu.CommandEncoderDescriptor{Label: "readback"})
	if err != nil {
		return err
	}
	defer enc.Release()
	if err := copy(enc); err != nil {
		return err
	}
	cmd, err := enc.Finish(nil)
	if err != nil {
		return err
	}
	defer cmd.Release()
	d.queue.Submit(cmd)
	d.submits++
	return d.mapReadLocked(st, n)
}

func (d *Device) mapReadLocked(st *wgpu.Buffer, n uint64) error {
	var status wgpu.BufferMapAsyncStatus
	done := false
	if err := st.MapAsync(wgpu.MapModeRead, 0, n, func(s wgpu.BufferMapAsyncStatus) {
		status, done = s, true
	}); err != nil {
		return err
	}
	d.pollUntil(func(bool) bool { return done })
	if status != wgpu.BufferMapAsyncStatusSuccess {
		return fmt.Errorf("mapping the readback buffer failed: %s", status)
	}
	return nil
}

// ReadF32 reads n float32 values starting at byte offset.
func (d *Device) ReadF32(buf *Buffer, offset uint64, n int) ([]float32, error) {
	b, err := d.Read(buf, offset, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	copy(F32Bytes(out), b)
	return out, nil
}

// ReadU32 reads n uint32 values starting at byte offset.
func (d *Device) ReadU32(buf *Buffer, offset uint64, n int) ([]uint32, error) {
	b, err := d.Read(buf, offset, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, n)
	copy(U32Bytes(out), b)
	return out, nil
}

// AllocatedBytes is the size of all live buffers made by NewBuffer*,
// Uniform and Params (allocation sizes, padding included; internal readback
// buffers are not counted).
func (d *Device) AllocatedBytes() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.allocated
}

// PeakBytes is the highest AllocatedBytes seen since Open or ResetPeak.
func (d *Device) PeakBytes() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peak
}

// ResetPeak restarts the peak measurement from the current allocation (for
// example after a measurement probe that is not part of the workload).
func (d *Device) ResetPeak() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peak = d.allocated
}

// F32Bytes views v as bytes (little-endian, no copy).
func F32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}

// U32Bytes views v as bytes (little-endian, no copy).
func U32Bytes(v []uint32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}

// BytesF32 copies little-endian float32 values out of b (len(b)/4 of them).
func BytesF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	copy(F32Bytes(out), b)
	return out
}
