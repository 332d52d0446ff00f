package gpu

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cogentcore/webgpu/wgpu"
)

// Readback is a copy of device memory on its way to the host: recorded by
// Recorder.ReadBack into a host-readable staging buffer, it travels with
// the recording's command buffer, and Wait returns the bytes once the GPU
// has produced them. Waiting does not hold the device's lock, so other
// goroutines can record and submit meanwhile (the next decode step, say).
type Readback struct {
	d      *Device
	st     *wgpu.Buffer
	stSize uint64
	size   uint64 // bytes asked for
	n      uint64 // bytes copied (size rounded up to 4)

	mu        sync.Mutex
	submitted bool
	done      bool
	data      []byte
	err       error
}

// ReadBack records a copy of size bytes at offset (a multiple of 4) of src
// into a staging buffer; after Submit, the returned Readback's Wait gives
// them. A Readback whose recording is never submitted (Reset, an error)
// fails its Wait.
func (r *Recorder) ReadBack(src *Buffer, offset, size uint64) *Readback {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	rb := &Readback{d: d, size: size, n: alignUp(size, 4)}
	o := op{kind: opReadback, src: src, srcOff: offset, size: rb.n, rb: rb}
	if r.err != nil {
		rb.fail(r.err)
		return rb
	}
	fail := func(err error) *Readback {
		r.fail(&o, err)
		rb.fail(r.err)
		return rb
	}
	if d.closed {
		return fail(ErrClosed)
	}
	if err := d.usable(src); err != nil {
		return fail(err)
	}
	if offset%4 != 0 || offset+size > src.size {
		return fail(fmt.Errorf("read of %d bytes at offset %d outside buffer %s (offset must be a multiple of 4)", size, offset, src))
	}
	if size == 0 {
		rb.done, rb.data = true, []byte{}
		return rb
	}
	st, stSize, err := d.takeStagingLocked(rb.n)
	if err != nil {
		return fail(err)
	}
	rb.st, rb.stSize = st, stSize
	r.pin.pinLocked()
	r.ops = append(r.ops, o)
	return rb
}

// fail ends the readback with err (when it has not ended yet).
func (rb *Readback) fail(err error) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if !rb.done {
		rb.done, rb.err = true, err
	}
}

// markSubmitted records that the readback's copy has been submitted.
func (rb *Readback) markSubmitted() {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.submitted = true
}

// Wait blocks until the copy has reached the host and returns the bytes.
// It may be called from any goroutine, any number of times.
func (rb *Readback) Wait() ([]byte, error) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.done {
		return rb.data, rb.err
	}
	if !rb.submitted {
		return nil, &Error{Op: "read back", Index: -1, Detail: fmt.Sprintf("%d bytes", rb.size),
			Err: fmt.Errorf("Wait was called before the recording holding this read-back was submitted")}
	}
	rb.data, rb.err = rb.wait()
	rb.done = true
	return rb.data, rb.err
}

func (rb *Readback) wait() ([]byte, error) {
	d := rb.d
	fail := func(err error) ([]byte, error) {
		return nil, &Error{Op: "read back", Index: -1, Detail: fmt.Sprintf("%d bytes", rb.size), Err: err}
	}
	var mapped atomic.Bool
	var status wgpu.BufferMapAsyncStatus
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fail(ErrClosed)
	}
	err := rb.st.MapAsync(wgpu.MapModeRead, 0, rb.n, func(s wgpu.BufferMapAsyncStatus) {
		status = s
		mapped.Store(true)
	})
	d.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	// Wait for this submission only (not work submitted after it), without
	// the device lock: wgpu-native's calls are thread-safe, the lock only
	// guards this package's own state.
	closed := false
	d.pollUntil(func(bool) bool {
		closed = d.isClosed()
		return closed || mapped.Load()
	})
	if closed {
		return fail(ErrClosed)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if status != wgpu.BufferMapAsyncStatusSuccess {
		return fail(fmt.Errorf("mapping the staging buffer failed: %s", status))
	}
	out := make([]byte, rb.size)
	copy(out, rb.st.GetMappedRange(0, uint(rb.n)))
	if err := rb.st.Unmap(); err != nil {
		return fail(err)
	}
	d.returnStagingLocked(rb.st, rb.stSize)
	return out, nil
}

func (d *Device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Staging buffers for readbacks are pooled by size class (powers of two
// from 4 KiB); classes up to stagingPoolMax keep a few free buffers.
const (
	stagingMin     = 4 << 10
	stagingPoolMax = 64 << 20
	stagingKeepN   = 8
)

func stagingClass(n uint64) uint64 {
	c := uint64(stagingMin)
	for c < n {
		c *= 2
	}
	return c
}

// takeStagingLocked returns a MapRead staging buffer of at least n bytes.
func (d *Device) takeStagingLocked(n uint64) (*wgpu.Buffer, uint64, error) {
	size := stagingClass(n)
	if free := d.stagingFree[size]; len(free) > 0 {
		st := free[len(free)-1]
		d.stagingFree[size] = free[:len(free)-1]
		return st, size, nil
	}
	var st *wgpu.Buffer
	err := guard(d.dev, func() (err error) {
		st, err = d.dev.CreateBuffer(&wgpu.BufferDescriptor{
			Label: "readback",
			Size:  size,
			Usage: wgpu.BufferUsageMapRead | wgpu.BufferUsageCopyDst,
		})
		return err
	})
	return st, size, err
}

// returnStagingLocked puts a staging buffer back in its pool (or frees it).
func (d *Device) returnStagingLocked(st *wgpu.Buffer, size uint64) {
	if st == nil {
		return
	}
	if d.closed || size > stagingPoolMax || len(d.stagingFree[size]) >= stagingKeepN {
		st.Release()
		return
	}
	if d.stagingFree == nil {
		d.stagingFree = map[uint64][]*wgpu.Buffer{}
	}
	d.stagingFree[size] = append(d.stagingFree[size], st)
}
