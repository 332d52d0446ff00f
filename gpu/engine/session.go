package engine

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Session is one sequence on the GPU engine: a state slot on the device.
// Its methods are safe for concurrent use; State blocks until the GPU has
// finished the work submitted before it, the others only submit.
type Session struct {
	e         *Engine
	slot      int
	hasChosen bool // a WantToken step has chosen a token for it (on the device)
	sampled   bool // WantToken uses the slot's sampler (SetSampling), else the argmax
	busy      bool // inside a Submit that is still recording passes
	closed    bool
}

// NewSession starts a sequence from the all-zero state in a free slot.
func (e *Engine) NewSession() (model.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.newSessionLocked()
	if err != nil {
		return nil, err
	}
	if err := e.clearSlot(s.slot); err != nil {
		e.slots[s.slot] = nil
		return nil, err
	}
	return s, nil
}

// newSessionLocked takes a free slot.
func (e *Engine) newSessionLocked() (*Session, error) {
	if e.closed {
		return nil, ErrEngineClosed
	}
	for i, used := range e.slots {
		if used == nil {
			s := &Session{e: e, slot: i}
			e.slots[i] = s
			return s, nil
		}
	}
	return nil, fmt.Errorf("gpu: all %d state slots are in use (close a session, or open the engine with more StateSlots or StateMemory): %w",
		len(e.slots), model.ErrNoSlot)
}

// slotBytes is the byte offset and size of a slot in the state buffer.
func (e *Engine) slotBytes(slot int) (off, size uint64) {
	size = uint64(e.cfg.StateBytes())
	return uint64(slot) * size, size
}

// clearSlot zeroes a slot on the device (queued, not waited for).
func (e *Engine) clearSlot(slot int) error {
	off, size := e.slotBytes(slot)
	r := e.dev.NewRecorder()
	r.Clear(e.state, off, size)
	return r.Submit()
}

func (s *Session) checkLocked() error {
	if s.closed {
		return fmt.Errorf("gpu: session is %w", model.ErrClosed)
	}
	if s.e.closed {
		return ErrEngineClosed
	}
	if s.busy {
		return fmt.Errorf("gpu: the session is in a step that is being submitted")
	}
	return nil
}

// Fork returns a new session whose state (and chosen token) is a copy of
// this one's, copied on the device after the work already submitted.
func (s *Session) Fork() (model.Session, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	f, err := e.newSessionLocked()
	if err != nil {
		return nil, err
	}
	f.hasChosen, f.sampled = s.hasChosen, s.sampled
	p, err := e.dev.ParamsOf(slotCopyParams{N: uint32(e.cfg.StateFloats()), Src: uint32(s.slot), Dst: uint32(f.slot), Chosen: uint32(e.ml.ids.chosen)})
	if err == nil {
		r := e.dev.NewRecorder()
		x, y, z := e.dev.Grid(uint32(e.cfg.StateFloats()), 256)
		r.Dispatch(e.k.copySlot, []gpu.Binding{{Buf: e.state}, {Buf: e.ids}, {Buf: p}}, x, y, z)
		if s.sampled {
			err = e.sampler.CopySlot(r, s.slot, f.slot)
		}
		if err == nil {
			err = r.Submit()
		} else {
			r.Reset()
		}
	}
	if err != nil {
		e.slots[f.slot] = nil
		return nil, fmt.Errorf("gpu: fork: %w", err)
	}
	return f, nil
}

// State returns a copy of the session's state, read back from the GPU once
// the work submitted before it has finished.
func (s *Session) State() (*model.State, error) {
	e := s.e
	e.mu.Lock()
	if err := s.checkLocked(); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	off, size := e.slotBytes(s.slot)
	r := e.dev.NewRecorder()
	rb := r.ReadBack(e.state, off, size)
	err := r.Submit()
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	raw, err := rb.Wait()
	if err != nil {
		return nil, err
	}
	st := model.NewState(e.cfg)
	copy(st.Data, gpu.BytesF32(raw))
	return st, nil
}

// SetState uploads st as the session's state (after the work already
// submitted). The chosen token is forgotten.
func (s *Session) SetState(st *model.State) error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	if err := model.NewState(e.cfg).Compatible(st); err != nil {
		return err
	}
	s.hasChosen = false
	off, _ := e.slotBytes(s.slot)
	return e.dev.WriteF32(e.state, off, st.Data)
}

// Reset returns to the all-zero state.
func (s *Session) Reset() error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	s.hasChosen = false
	return e.clearSlot(s.slot)
}

// SetSampling sets the sampler of WantToken steps (nil: the argmax). The
// slot's sampler on the device gets p with fresh penalty counts and
// counter, after the work already submitted.
func (s *Session) SetSampling(p *model.Sampling) error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	if p == nil {
		s.sampled = false
		return nil
	}
	if err := p.Validate(e.cfg.Vocab); err != nil {
		return err
	}
	if err := e.sampler.Configure(s.slot, *p); err != nil {
		return err
	}
	s.sampled = true
	return nil
}

// Close frees the session's slot.
func (s *Session) Close() error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if !s.closed {
		s.closed = true
		if !s.busy { // else the step that holds it frees the slot
			e.freeSlotLocked(s)
		}
	}
	return nil
}

func (e *Engine) freeSlotLocked(s *Session) {
	if e.slots[s.slot] == s {
		e.slots[s.slot] = nil
	}
}
