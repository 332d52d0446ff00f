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
type HostCost struct {
	Passes     int
	Dispatches int
	Record     time.Duration // tables, bind groups, dispatch list
	Submit     time.Duration // command encoding and queue submission
}

// PerPass is the host time of one pass (for decode: one step).
func (c HostCost) PerPass() time.Duration {
	if c.Passes == 0 {
		return 0
	}
	return (c.Record + c.Submit) / time.Duration(c.Passes)
}

// PerDispatch is the host time per dispatch.
func (c HostCost) PerDispatch() time.Duration {
	if c.Dispatches == 0 {
		return 0
	}
	return (c.Record + c.Submit) / time.Duration(c.Dispatches)
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
	p := planPasses(in, e.ml.act.tmax)[0]
	e.fill(p, in)
	if err := e.dev.Write(e.pass, 0, p.tables); err != nil {
		return gpu.Timing{}, err
	}
	r := e.dev.NewRecorder()
	e.recordPass(r, p.T, len(p.seqs), 1, len(p.argmaxRows))
	if len(p.sampledRows) > 0 {
		il := e.ml.ids
		if err := e.sampler.RecordChosen(r, e.act, e.ml.act.logits, p.sampledSlot, e.ids, il.sampled, il.chosen); err != nil {
			r.Reset()
			return gpu.Timing{}, err
		}
	}
	tm, err := r.SubmitTimed()
	if err != nil {
		return gpu.Timing{}, fmt.Errorf("gpu: profile step: %w", err)
	}
	in[0].s.hasChosen = true
	return tm, nil
}
