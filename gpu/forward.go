package gpu

import (
	"errors"
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file records the forward pass. One call of Session.Forward becomes
// one command buffer per MaxTokens tokens: the embedding, 7 dispatches per
// layer (time-mix norm and shift, the r/k/v/LoRA-down products, WKV, the
// output projection, channel-mix norm and shift, FFN key, FFN value), then
// ln_out, the head and, when asked, the argmax.

func (e *Engine) recordEmbed(r *Recorder, T int) {
	for _, p := range e.embed {
		r.Dispatch(e.k.embed, []Binding{{Buf: p.arena.buf}, {Buf: e.gvec}, {Buf: e.act}, {Buf: e.ids}, {Buf: p.params}}, uint32(T), 1, 1)
	}
}

// recordLayer records layer li for T tokens of nSeqs sequences.
func (e *Engine) recordLayer(r *Recorder, li, T, nSeqs int) {
	g := &e.layers[li]
	ln := func(p *Buffer) []Binding {
		return []Binding{{Buf: g.vec}, {Buf: e.act}, {Buf: e.state}, {Buf: e.tok}, {Buf: p}, {}}
	}
	r.Dispatch(e.k.lnmix, ln(g.lnAtt), uint32(T), 1, 1)
	e.recordStage(r, g.tm, T, e.step)
	wkv := e.k.wkv
	if e.opt.SplitLoRAUps || T > splitUpsAbove {
		e.recordStage(r, g.ups, T, e.step)
		wkv = e.k.wkvPre
	}
	r.Dispatch(wkv, []Binding{{Buf: g.up.buf}, {Buf: g.vec}, {Buf: e.act}, {Buf: e.state}, {Buf: g.wkvParams}, {Buf: e.seqU}},
		uint32(e.cfg.Heads), uint32(nSeqs), 1)
	e.recordStage(r, g.wo, T, e.step)
	r.Dispatch(e.k.lnmix, ln(g.lnFfn), uint32(T), 1, 1)
	e.recordStage(r, g.ffk, T, e.step)
	e.recordStage(r, g.ffv, T, e.step)
}

// recordStage records a weight stage for T tokens: the matvec kernel for a
// few tokens, the tiled matmul beyond.
func (e *Engine) recordStage(r *Recorder, st stage, T int, step *Buffer) {
	for _, d := range st.parts {
		if T <= mvMaxT {
			k := d.k.mvN
			if T == 1 {
				k = d.k.mv1
			}
			x, y, z := e.dev.Grid(d.mvWGs, 1)
			r.Dispatch(k, []Binding{{Buf: d.arena.buf}, {Buf: e.act}, {Buf: d.mv}, {Buf: step}}, x, y, z)
		} else {
			r.Dispatch(d.k.mm, []Binding{{Buf: d.arena.buf}, {Buf: e.act}, {Buf: d.mm}, {Buf: step}},
				d.mmWGs, uint32((T+d.mmTT-1)/d.mmTT), 1)
		}
	}
}

// recordHead records ln_out and the head for the rows set in hstep, and the
// argmax of each row when argmax is not nil (its TokParams).
func (e *Engine) recordHead(r *Recorder, rows int, argmax bool) {
	r.Dispatch(e.k.lnRows, []Binding{{Buf: e.gvec}, {Buf: e.act}, {}, {}, {Buf: e.lnOut}, {Buf: e.hstep}}, uint32(rows), 1, 1)
	e.recordStage(r, e.head, rows, e.hstep)
	if argmax {
		r.Dispatch(e.k.argmax, []Binding{{}, {}, {Buf: e.act}, {Buf: e.ids}, {Buf: e.argmaxParams}}, uint32(rows), 1, 1)
	}
}

// setArgmaxParams prepares the TokParams of the argmax: the chosen ids go to
// ids[next+row]; with history they are also appended to the history.
func (e *Engine) argmaxWords(next uint32, history bool) []uint32 {
	c, l := e.cfg, e.lay
	hist, count := uint32(0xffffffff), uint32(0)
	if history {
		hist, count = uint32(l.idsHist), uint32(l.idsCount)
	}
	return []uint32{uint32(c.Dim), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, uint32(c.Vocab), uint32(l.logits), next, hist, count}
}

// batch describes the tokens of one internal step: for each sequence its
// slot and its tokens (contiguous in ids).
type batchSeq struct {
	slot  int
	first int // index of the first token in the step
	count int
}

// writeStep uploads the ids, token metadata and sequence table of a step.
func (e *Engine) writeStep(ids []int, seqs []batchSeq, headRows, headRow0 int) error {
	T := len(ids)
	u := make([]uint32, T)
	for i, id := range ids {
		u[i] = uint32(id)
	}
	if err := e.dev.WriteU32(e.ids, 0, u); err != nil {
		return err
	}
	if err := e.dev.WriteU32(e.tok, 0, tokenMeta(seqs, T)); err != nil {
		return err
	}
	if err := e.dev.WriteU32(e.seqU, 0, seqTable(seqs)); err != nil {
		return err
	}
	if err := e.dev.WriteU32(e.step, 0, []uint32{uint32(T), 0, 0, 0}); err != nil {
		return err
	}
	return e.dev.WriteU32(e.hstep, 0, []uint32{uint32(headRows), uint32(headRow0), 0, 0})
}

// tokenMeta is the per-token metadata of lnmix.wgsl: for token t,
// [2t] = slot | (t is its sequence's first token) << 31 and [2t+1] = the
// index of its sequence's last token.
func tokenMeta(seqs []batchSeq, T int) []uint32 {
	meta := make([]uint32, 2*T)
	for _, s := range seqs {
		for t := s.first; t < s.first+s.count; t++ {
			meta[2*t] = uint32(s.slot)
			if t == s.first {
				meta[2*t] |= 1 << 31
			}
			meta[2*t+1] = uint32(s.first + s.count - 1)
		}
	}
	return meta
}

// seqTable is the SeqParams block of wkv.wgsl: per sequence its first
// token, token count and slot.
func seqTable(seqs []batchSeq) []uint32 {
	sq := make([]uint32, 4*maxSeqs)
	for i, s := range seqs {
		sq[4*i], sq[4*i+1], sq[4*i+2] = uint32(s.first), uint32(s.count), uint32(s.slot)
	}
	return sq
}

// runStep records and submits one step of at most MaxTokens tokens and
// returns the logits of the head rows (nil when headRows is 0).
func (e *Engine) runStep(ids []int, seqs []batchSeq, headRows, headRow0 int, argmax bool, readLogits bool) ([]float32, error) {
	if err := e.writeStep(ids, seqs, headRows, headRow0); err != nil {
		return nil, err
	}
	r := e.dev.NewRecorder()
	e.recordEmbed(r, len(ids))
	for li := range e.layers {
		e.recordLayer(r, li, len(ids), len(seqs))
	}
	if headRows > 0 {
		e.recordHead(r, headRows, argmax)
	}
	if err := r.Submit(); err != nil {
		return nil, err
	}
	if !readLogits || headRows == 0 {
		return nil, nil
	}
	return e.dev.ReadF32(e.act, uint64(4*e.lay.logits), headRows*e.cfg.Vocab)
}

// Session is one sequence on the GPU engine: a state slot on the device.
type Session struct {
	e      *Engine
	slot   int
	closed bool
}

// ErrNoSlot is returned by NewSession when every state slot is in use.
var ErrNoSlot = errors.New("gpu: every sequence slot is in use (raise EngineOptions.MaxSequences)")

// NewSession starts a sequence from the all-zero state.
func (e *Engine) NewSession() (model.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrEngineClosed
	}
	for i, used := range e.slots {
		if !used {
			s := &Session{e: e, slot: i}
			if err := e.clearSlot(i); err != nil {
				return nil, err
			}
			e.slots[i] = true
			return s, nil
		}
	}
	return nil, ErrNoSlot
}

func (e *Engine) clearSlot(slot int) error {
	n := e.cfg.StateFloats()
	return e.dev.WriteF32(e.state, uint64(4*slot*n), make([]float32, n))
}

func (s *Session) check() error {
	if s.closed {
		return errors.New("gpu: session is closed")
	}
	if s.e.closed {
		return ErrEngineClosed
	}
	return nil
}

// Forward consumes tokens (in steps of at most MaxTokens) and returns the
// logits selected by out.
func (s *Session) Forward(tokens []int, out model.Output) ([]float32, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := model.CheckTokens(tokens, e.cfg.Vocab); err != nil {
		return nil, err
	}
	var logits []float32
	for lo := 0; lo < len(tokens); lo += e.lay.tmax {
		hi := min(lo+e.lay.tmax, len(tokens))
		T := hi - lo
		rows, row0 := 0, 0
		switch {
		case out == model.OutputAll:
			rows = T
		case out == model.OutputLast && hi == len(tokens):
			rows, row0 = 1, T-1
		}
		l, err := e.runStep(tokens[lo:hi], []batchSeq{{slot: s.slot, count: T}}, rows, row0, false, true)
		if err != nil {
			return nil, fmt.Errorf("gpu: forward: %w", err)
		}
		logits = append(logits, l...)
	}
	return logits, nil
}

// ForwardArgmax consumes tokens and returns the most likely next token,
// chosen on the GPU (only its id is read back).
func (s *Session) ForwardArgmax(tokens []int) (int, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := model.CheckTokens(tokens, e.cfg.Vocab); err != nil {
		return 0, err
	}
	if err := e.setArgmax(uint32(e.lay.idsNext), false); err != nil {
		return 0, err
	}
	for lo := 0; lo < len(tokens); lo += e.lay.tmax {
		hi := min(lo+e.lay.tmax, len(tokens))
		T := hi - lo
		rows := 0
		if hi == len(tokens) {
			rows = 1
		}
		if _, err := e.runStep(tokens[lo:hi], []batchSeq{{slot: s.slot, count: T}}, rows, T-1, true, false); err != nil {
			return 0, fmt.Errorf("gpu: forward: %w", err)
		}
	}
	id, err := e.dev.ReadU32(e.ids, uint64(4*e.lay.idsNext), 1)
	if err != nil {
		return 0, err
	}
	return int(id[0]), nil
}

// setArgmax selects the argmax parameters (cached per content).
func (e *Engine) setArgmax(next uint32, history bool) error {
	p, err := e.dev.Params(e.argmaxWords(next, history)...)
	if err != nil {
		return err
	}
	e.argmaxParams = p
	return nil
}

// Greedy decodes n tokens greedily after feeding token (usually the last
// prompt token, not yet consumed), entirely on the GPU: each step's argmax
// becomes the next step's input without a round trip, steps are submitted
// in groups, and only the generated ids are read back at the end.
func (s *Session) Greedy(token, n int) ([]int, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := model.CheckTokens([]int{token}, e.cfg.Vocab); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	if n > idsHistory {
		return nil, fmt.Errorf("gpu: at most %d tokens per Greedy call, asked for %d", idsHistory, n)
	}
	if err := e.setArgmax(0, true); err != nil {
		return nil, err
	}
	if err := e.writeStep([]int{token}, []batchSeq{{slot: s.slot, count: 1}}, 1, 0); err != nil {
		return nil, err
	}
	if err := e.dev.WriteU32(e.ids, uint64(4*e.lay.idsCount), []uint32{0}); err != nil {
		return nil, err
	}
	const stepsPerSubmit = 32
	for done := 0; done < n; {
		r := e.dev.NewRecorder()
		k := min(stepsPerSubmit, n-done)
		for i := 0; i < k; i++ {
			e.recordEmbed(r, 1)
			for li := range e.layers {
				e.recordLayer(r, li, 1, 1)
			}
			e.recordHead(r, 1, true)
		}
		if err := r.Submit(); err != nil {
			return nil, fmt.Errorf("gpu: greedy decode: %w", err)
		}
		done += k
	}
	got, err := e.dev.ReadU32(e.ids, uint64(4*e.lay.idsHist), n)
	if err != nil {
		return nil, err
	}
	out := make([]int, n)
	for i, v := range got {
		out[i] = int(v)
	}
	return out, nil
}

// State returns a copy of the session's state, read back from the GPU.
func (s *Session) State() (*model.State, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	st := model.NewState(e.cfg)
	data, err := e.dev.ReadF32(e.state, uint64(4*s.slot*len(st.Data)), len(st.Data))
	if err != nil {
		return nil, err
	}
	copy(st.Data, data)
	return st, nil
}

// SetState uploads st as the session's state.
func (s *Session) SetState(st *model.State) error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := model.NewState(e.cfg).Compatible(st); err != nil {
		return err
	}
	return e.dev.WriteF32(e.state, uint64(4*s.slot*len(st.Data)), st.Data)
}

// Reset returns to the all-zero state.
func (s *Session) Reset() error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	return e.clearSlot(s.slot)
}

// Close frees the session's slot.
func (s *Session) Close() error {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.slot < len(e.slots) {
			e.slots[s.slot] = false
		}
	}
	return nil
}

// GreedyBatch decodes several sessions at once for steps steps: each step
// feeds every session one token (one step of T = len(sessions) tokens, the
// weights read once for all), and each session's argmax becomes its next
// input on the GPU. tokens[i] is session i's first input. It returns the ids
// chosen by the last step. Aggregate throughput grows with the batch because
// decode is bound by reading the weights.
func (e *Engine) GreedyBatch(sessions []*Session, tokens []int, steps int) ([]int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	B := len(sessions)
	if B == 0 || B != len(tokens) {
		return nil, fmt.Errorf("gpu: %d sessions but %d tokens", B, len(tokens))
	}
	if B > e.lay.tmax {
		return nil, fmt.Errorf("gpu: batch of %d sequences exceeds MaxTokens %d", B, e.lay.tmax)
	}
	if err := model.CheckTokens(tokens, e.cfg.Vocab); err != nil {
		return nil, err
	}
	seqs := make([]batchSeq, B)
	seen := map[int]bool{}
	for i, s := range sessions {
		if err := s.check(); err != nil {
			return nil, err
		}
		if s.e != e || seen[s.slot] {
			return nil, fmt.Errorf("gpu: session %d is from another engine or appears twice", i)
		}
		seen[s.slot] = true
		seqs[i] = batchSeq{slot: s.slot, first: i, count: 1}
	}
	if err := e.setArgmax(0, false); err != nil {
		return nil, err
	}
	if err := e.writeStep(tokens, seqs, B, 0); err != nil {
		return nil, err
	}
	const stepsPerSubmit = 16
	for done := 0; done < steps; {
		r := e.dev.NewRecorder()
		k := min(stepsPerSubmit, steps-done)
		for i := 0; i < k; i++ {
			e.recordEmbed(r, B)
			for li := range e.layers {
				e.recordLayer(r, li, B, B)
			}
			e.recordHead(r, B, true)
		}
		if err := r.Submit(); err != nil {
			return nil, fmt.Errorf("gpu: batched decode: %w", err)
		}
		done += k
	}
	got, err := e.dev.ReadU32(e.ids, 0, B)
	if err != nil {
		return nil, err
	}
	out := make([]int, B)
	for i, v := range got {
		out[i] = int(v)
	}
	return out, nil
}

// ProfileStep runs one decode step of token (advancing the session) with
// per-kernel timing: GPU timestamps where the adapter has them, else one
// submit per dispatch timed by the wall clock (Timing.Method says which).
func (s *Session) ProfileStep(token int) (Timing, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.check(); err != nil {
		return Timing{}, err
	}
	if err := model.CheckTokens([]int{token}, e.cfg.Vocab); err != nil {
		return Timing{}, err
	}
	if err := e.setArgmax(uint32(e.lay.idsNext), false); err != nil {
		return Timing{}, err
	}
	if err := e.writeStep([]int{token}, []batchSeq{{slot: s.slot, count: 1}}, 1, 0); err != nil {
		return Timing{}, err
	}
	r := e.dev.NewRecorder()
	e.recordEmbed(r, 1)
	for li := range e.layers {
		e.recordLayer(r, li, 1, 1)
	}
	e.recordHead(r, 1, true)
	return r.SubmitTimed()
}
