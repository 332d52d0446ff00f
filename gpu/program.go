package gpu

import (
	"errors"
	"fmt"
)

// Program is a recorded sequence of dispatches that can be appended to any
// number of recordings without resolving its bindings again: a decode step
// of a given shape is the same dispatches with the same bind groups every
// time, so recording it becomes one append. Its bind groups stay alive (the
// device's cache keeps them) until Release.
type Program struct {
	d          *Device
	ops        []op
	dispatches int
	released   bool
}

// Program turns what the recorder holds into a Program and resets the
// recorder. Only dispatches can be kept (copies, clears and read-backs
// belong to one submission); the recorder's sticky error is returned.
func (r *Recorder) Program() (*Program, error) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	defer r.resetLocked()
	if r.err != nil {
		return nil, r.err
	}
	p := &Program{d: d, ops: append([]op(nil), r.ops...), dispatches: r.dispatches}
	for i := range p.ops {
		if p.ops[i].kind != opDispatch {
			return nil, fmt.Errorf("gpu: a Program holds dispatches only; operation %d is a %s", i, r.describe(&p.ops[i], i, len(p.ops), errors.New("")).Op)
		}
	}
	for _, o := range p.ops {
		if e, ok := d.groups.m[o.gkey]; ok {
			e.pins++
		}
	}
	return p, nil
}

// Dispatches is the number of dispatches in the program.
func (p *Program) Dispatches() int { return p.dispatches }

// Append records the program's dispatches.
func (r *Recorder) Append(p *Program) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.err != nil {
		return
	}
	if p.released || p.d != d {
		r.err = &Error{Op: "append", Index: len(r.ops), Err: errors.New("the program was released or belongs to another device")}
		return
	}
	if d.closed {
		r.err = &Error{Op: "append", Index: len(r.ops), Err: ErrClosed}
		return
	}
	r.pin.pinLocked()
	r.ops = append(r.ops, p.ops...)
	r.dispatches += p.dispatches
}

// Release lets the device's cache drop the program's bind groups.
func (p *Program) Release() {
	d := p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.released {
		return
	}
	p.released = true
	for _, o := range p.ops {
		if e, ok := d.groups.m[o.gkey]; ok && e.pins > 0 {
			e.pins--
		}
	}
	p.ops = nil
}
