package engine

import (
	"fmt"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// HostCost is the host (CPU) time spent turning steps into GPU work: filling
// the pass tables and recording the dispatches, then encoding the command
// buffer and submitting it. Waiting for results is not included.
//
// Record and Encode are the host's work for a step. Submit is the queue's
// submit call: a hand-over on most drivers, but lavapipe (a CPU driver)
// executes the commands inside it, so it is reported apart and not counted
// in PerPass and PerDispatch.
type HostCost struct {
	Passes     int
	Dispatches int
	Record     time.Duration // tables, bind groups, dispatch list (this package and gpu.Recorder)
	Encode     time.Duration // wgpu's command encoding
	Submit     time.Duration // the queue's submit call
}

// PerPass is the host time (record and encode) of one pass; for decode,
// one step.
func (c HostCost) PerPass() time.Duration {
	if c.Passes == 0 {
		return 0
	}
	return (c.Record + c.Encode) / time.Duration(c.Passes)
}

// PerDispatch is the host time (record and encode) per dispatch.
func (c HostCost) PerDispatch() time.Duration {
	if c.Dispatches == 0 {
		return 0
	}
	return (c.Record + c.Encode) / time.Duration(c.Dispatches)
}

// HostCost returns the host time spent since the last ResetHostCost.
func (e *Engine) HostCost() HostCost {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cost
}

// ResetHostCost restarts the host time measurement.
func (e *Engine) ResetHostCost() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cost = HostCost{}
}

// ProfileStep runs one decode step of token for s (advancing its state)
// with per-kernel timing: GPU timestamps where the adapter has them, else
// one submit per dispatch timed by the wall clock (Timing.Method says
// which).
func (e *Engine) ProfileStep(s model.Session, token int) (gpu.Timing, error) {
	if err := model.CheckTokens([]int{token}, e.cfg.Vocab); err != nil {
		return gpu.Timing{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	in, err := e.claim([]model.Seq{{Session: s, Tokens: []int{token}, Want: model.WantToken}})
	if err != nil {
		return gpu.Timing{}, err
	}
	defer func() { in[0].s.busy = false }()
	r, err := e.recordPassOf(planPasses(in, e.ml.act.tmax)[0], in)
	if err != nil {
		return gpu.Timing{}, err
	}
	tm, err := r.SubmitTimed()
	if err != nil {
		return gpu.Timing{}, fmt.Errorf("gpu: profile step: %w", err)
	}
	in[0].s.hasChosen = true
	return tm, nil
}

// MeasureHostCost records and encodes steps decode steps of s (one token
// each, chained on the device) without submitting them, and returns their
// host cost: what the host spends per step when the GPU runs elsewhere.
// The session's state is not changed. Encode is the command encoding;
// Submit stays zero.
func (e *Engine) MeasureHostCost(s model.Session, steps int) (HostCost, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in, err := e.claim([]model.Seq{{Session: s, Tokens: []int{0}, Want: model.WantToken}})
	if err != nil {
		return HostCost{}, err
	}
	defer func() { in[0].s.busy = false }()
	var c HostCost
	for i := 0; i < steps; i++ {
		start := time.Now()
		r, err := e.recordPassOf(planPasses(in, e.ml.act.tmax)[0], in)
		if err != nil {
			return c, err
		}
		recorded := time.Now()
		dispatches := r.Dispatches()
		encode, err := r.DryRun() // drops the read-backs too
		if err != nil {
			return c, err
		}
		c.Passes++
		c.Dispatches += dispatches
		c.Record += recorded.Sub(start)
		c.Encode += encode
	}
	// The tables written above reach the device with the next submission;
	// they are rewritten by every pass, so they change nothing.
	return c, nil
}
