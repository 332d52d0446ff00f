package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file turns a step (any set of sessions, each with its own tokens)
// into passes of at most MaxTokens tokens, records and submits them, and
// gathers what each sequence asked for once the GPU is done.

// passSeq is the part of one sequence that a pass processes.
type passSeq struct {
	seq   int // index in the step
	first int // index of its first token in the pass
	count int // tokens in the pass
	from  int // position of its first token in the sequence's input
	last  bool
}

// rowRef says whose logits a head row holds: a sequence of the step and a
// position in its input.
type rowRef struct{ seq, pos int }

// pass is one recorded forward pass and what it will bring back.
type pass struct {
	seqs        []passSeq
	T           int
	tables      []byte   // the pass tables (passLayout), as written
	argmaxRows  []rowRef // head rows [0, A) pick a token by argmax
	sampledRows []rowRef // the next S rows pick one with their slot's sampler
	sampledSlot []int    // the slots of the sampled rows
	logitRows   []rowRef // the rows after them return logits
	ids         *gpu.Readback
	logits      *gpu.Readback
}

// tokenRows is the number of head rows that pick a token.
func (p *pass) tokenRows() int { return len(p.argmaxRows) + len(p.sampledRows) }

// stepSeq is one sequence of a step as the engine sees it.
type stepSeq struct {
	s      *Session
	tokens []int // host tokens, in order; the Continue token follows them
	cont   bool
	want   model.Want
}

func (q stepSeq) inputLen() int {
	if q.cont {
		return len(q.tokens) + 1
	}
	return len(q.tokens)
}

// planPasses packs the sequences' inputs into passes of at most tmax
// tokens, in order, splitting a sequence across passes when it does not
// fit the rest of one.
func planPasses(seqs []stepSeq, tmax int) []*pass {
	var passes []*pass
	cur := &pass{}
	for i, q := range seqs {
		n := q.inputLen()
		for from := 0; from < n; {
			if cur.T == tmax {
				passes = append(passes, cur)
				cur = &pass{}
			}
			take := min(n-from, tmax-cur.T)
			cur.seqs = append(cur.seqs, passSeq{seq: i, first: cur.T, count: take, from: from, last: from+take == n})
			cur.T += take
			from += take
		}
	}
	return append(passes, cur)
}

// fill computes the pass's tables and head rows: rows that pick a token
// first, then rows whose logits come back.
func (e *Engine) fill(p *pass, seqs []stepSeq) {
	pl, ids := e.ml.pass, e.ml.ids
	p.tables = make([]byte, pl.head+pl.headN)
	put := func(off uint64, i int, v uint32) { binary.LittleEndian.PutUint32(p.tables[off+4*uint64(i):], v) }
	var logitTok []int // pass token index of each logits row
	var argmaxTok, sampledTok []int
	for si, ps := range p.seqs {
		q := seqs[ps.seq]
		slot := uint32(q.s.slot)
		for j := 0; j < ps.count; j++ {
			t := ps.first + j
			pos := ps.from + j
			meta := slot
			if j == 0 {
				meta |= 1 << 31
			}
			put(pl.tok, 4*t, meta)
			put(pl.tok, 4*t+1, uint32(ps.first+ps.count-1))
			if pos < len(q.tokens) {
				put(pl.tok, 4*t+2, 0xffffffff)
				put(pl.tok, 4*t+3, uint32(q.tokens[pos]))
			} else { // the Continue token: chosen on the device
				put(pl.tok, 4*t+2, uint32(ids.chosen)+slot)
			}
			if q.want == model.WantAll {
				logitTok = append(logitTok, t)
				p.logitRows = append(p.logitRows, rowRef{ps.seq, pos})
			}
		}
		put(pl.seqs, 4*si, uint32(ps.first))
		put(pl.seqs, 4*si+1, uint32(ps.count))
		put(pl.seqs, 4*si+2, slot)
		if ps.last {
			t, pos := ps.first+ps.count-1, ps.from+ps.count-1
			switch q.want {
			case model.WantLast:
				logitTok = append(logitTok, t)
				p.logitRows = append(p.logitRows, rowRef{ps.seq, pos})
			case model.WantToken:
				if q.s.sampled {
					sampledTok = append(sampledTok, t)
					p.sampledRows = append(p.sampledRows, rowRef{ps.seq, pos})
					p.sampledSlot = append(p.sampledSlot, q.s.slot)
				} else {
					argmaxTok = append(argmaxTok, t)
					p.argmaxRows = append(p.argmaxRows, rowRef{ps.seq, pos})
				}
			}
		}
	}
	refs := append(append(append([]rowRef(nil), p.argmaxRows...), p.sampledRows...), p.logitRows...)
	for r, t := range append(append(argmaxTok, sampledTok...), logitTok...) {
		put(pl.head, 2*r, uint32(t))
		put(pl.head, 2*r+1, uint32(seqs[refs[r].seq].s.slot))
	}
}

// recordPassOf fills and writes the pass's tables and returns a recording
// of the pass: its program (the dispatches of its shape), the sampler for
// the rows that sample, and the read-backs of its token rows and logits
// rows. The caller holds e.mu and submits (or drops) the recording.
func (e *Engine) recordPassOf(p *pass, in []stepSeq) (*gpu.Recorder, error) {
	e.fill(p, in)
	if err := e.dev.Write(e.pass, 0, p.tables); err != nil {
		return nil, err
	}
	rows := p.tokenRows() + len(p.logitRows)
	prog, err := e.program(passShape{p.T, len(p.seqs), rows, len(p.argmaxRows)})
	if err != nil {
		return nil, err
	}
	r := e.dev.NewRecorder()
	r.Append(prog)
	if len(p.sampledRows) > 0 {
		il := e.ml.ids
		logits := e.ml.act.logits + len(p.argmaxRows)*e.cfg.Vocab
		if err := e.sampler.RecordChosen(r, e.act, logits, p.sampledSlot, e.ids, il.sampled, il.chosen); err != nil {
			r.Reset()
			return nil, err
		}
	}
	// Every pass brings back its token rows (the whole small output
	// region), so that waiting for it is always possible.
	p.ids = r.ReadBack(e.ids, uint64(4*e.ml.ids.out), uint64(4*e.ml.ids.readN))
	if n := len(p.logitRows); n > 0 {
		V := uint64(e.cfg.Vocab)
		p.logits = r.ReadBack(e.act, 4*(uint64(e.ml.act.logits)+uint64(p.tokenRows())*V), 4*uint64(n)*V)
	}
	return r, nil
}

// submitPass records and submits a pass, counting the host time. The
// caller holds e.mu.
func (e *Engine) submitPass(p *pass, in []stepSeq) error {
	start := time.Now()
	r, err := e.recordPassOf(p, in)
	if err != nil {
		return err
	}
	recorded := time.Now()
	dispatches := r.Dispatches()
	if err := r.Submit(); err != nil {
		return err
	}
	encode, submit := r.Times()
	e.cost.Passes++
	e.cost.Dispatches += dispatches
	e.cost.Record += recorded.Sub(start)
	e.cost.Encode += encode
	e.cost.Submit += submit
	return nil
}

// passShape is what a pass's dispatches depend on: its tokens, sequences,
// head rows and argmax rows (the tables say which tokens and slots).
type passShape struct{ T, seqs, rows, argmaxRows int }

// maxPrograms bounds the recorded programs kept (one per pass shape).
const maxPrograms = 256

// program returns the dispatches of a pass of the given shape, recorded
// once and kept (the caller holds e.mu).
func (e *Engine) program(sh passShape) (*gpu.Program, error) {
	if p, ok := e.programs[sh]; ok {
		return p, nil
	}
	if len(e.programs) >= maxPrograms {
		e.releasePrograms()
	}
	r := e.dev.NewRecorder()
	e.recordPass(r, sh.T, sh.seqs, sh.rows, sh.argmaxRows)
	p, err := r.Program()
	if err != nil {
		return nil, err
	}
	if e.programs == nil {
		e.programs = map[passShape]*gpu.Program{}
	}
	e.programs[sh] = p
	return p, nil
}

// releasePrograms drops the kept programs.
func (e *Engine) releasePrograms() {
	for k, p := range e.programs {
		p.Release()
		delete(e.programs, k)
	}
}

// Step advances every sequence by its tokens and returns what each asked
// for. It blocks until the GPU is done.
func (e *Engine) Step(ctx context.Context, seqs []model.Seq) ([]model.SeqResult, error) {
	p, err := e.Submit(ctx, seqs)
	if err != nil {
		return nil, err
	}
	return p.Wait()
}

// Submit records and submits the step's passes and returns without
// waiting for the last one. A step of several passes keeps at most two in
// flight, releasing the engine between them (other callers' steps may run
// in between) and checking ctx before each; a cancelled step returns a
// *model.StepError saying how many tokens each session consumed.
func (e *Engine) Submit(ctx context.Context, seqs []model.Seq) (model.Pending, error) {
	if err := model.CheckStep(seqs, e.cfg.Vocab); err != nil {
		return nil, err
	}
	e.mu.Lock()
	locked := true
	defer func() {
		if locked {
			e.mu.Unlock()
		}
	}()
	in, err := e.claim(seqs)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, q := range in {
			q.s.busy = false
			if q.s.closed {
				e.freeSlotLocked(q.s)
			}
		}
	}()
	passes := planPasses(in, e.ml.act.tmax)
	res := make([]model.SeqResult, len(in))
	for i := range res {
		res[i].Token = -1
	}
	for pi, p := range passes {
		if pi > 0 {
			// Let other callers in while the previous pass runs, and stop
			// here when the step was cancelled.
			e.mu.Unlock()
			locked = false
			_, werr := passes[pi-1].ids.Wait()
			e.mu.Lock()
			locked = true
			if werr == nil {
				werr = ctx.Err()
			}
			if werr == nil && e.closed {
				werr = ErrEngineClosed
			}
			if werr != nil {
				drain(passes[:pi])
				for i := range res {
					res[i].Logits, res[i].Token = nil, -1
				}
				return nil, &model.StepError{Results: res, Err: werr}
			}
		}
		if err := e.submitPass(p, in); err != nil {
			drain(passes[:pi])
			return nil, fmt.Errorf("gpu: step: %w", err)
		}
		for _, ps := range p.seqs {
			res[ps.seq].Consumed += ps.count
			if ps.last && in[ps.seq].want == model.WantToken {
				in[ps.seq].s.hasChosen = true
			}
		}
	}
	return &pending{e: e, in: in, passes: passes, res: res}, nil
}

// claim checks the step's sessions against the engine (the caller holds
// e.mu) and marks them busy for the step.
func (e *Engine) claim(seqs []model.Seq) ([]stepSeq, error) {
	if e.closed {
		return nil, ErrEngineClosed
	}
	in := make([]stepSeq, len(seqs))
	for i, sq := range seqs {
		s, ok := sq.Session.(*Session)
		switch {
		case !ok || s.e != e:
			return nil, fmt.Errorf("gpu: sequence %d: %w", i, errNotOurs)
		case s.closed:
			return nil, fmt.Errorf("gpu: sequence %d: session is %w", i, model.ErrClosed)
		case s.busy:
			return nil, fmt.Errorf("gpu: sequence %d: the session is already in a step that is being submitted", i)
		case sq.Continue && !s.hasChosen:
			return nil, fmt.Errorf("gpu: sequence %d: Continue: %w", i, model.ErrNoChosenToken)
		}
		in[i] = stepSeq{s: s, tokens: sq.Tokens, cont: sq.Continue, want: sq.Want}
	}
	for _, q := range in {
		q.s.busy = true
	}
	return in, nil
}

// drain waits for the read-backs of passes that were submitted, so that
// their staging buffers go back to the pool.
func drain(passes []*pass) {
	for _, p := range passes {
		if p.ids != nil {
			p.ids.Wait()
		}
		if p.logits != nil {
			p.logits.Wait()
		}
	}
}

// pending is a submitted step.
type pending struct {
	e      *Engine
	in     []stepSeq
	passes []*pass
	res    []model.SeqResult

	once sync.Once
	out  []model.SeqResult
	err  error
}

// Wait gathers the step's results once its passes have finished.
func (p *pending) Wait() ([]model.SeqResult, error) {
	p.once.Do(func() { p.out, p.err = p.gather() })
	return p.out, p.err
}

func (p *pending) gather() ([]model.SeqResult, error) {
	defer drain(p.passes)
	V := p.e.cfg.Vocab
	res := p.res
	for _, ps := range p.passes {
		words, err := ps.ids.Wait()
		if err != nil {
			return nil, fmt.Errorf("gpu: step: %w", err)
		}
		il := p.e.ml.ids
		for k, row := range ps.argmaxRows {
			id := binary.LittleEndian.Uint32(words[4*(il.out+2*k):])
			if bad := binary.LittleEndian.Uint32(words[4*(il.out+2*k)+4:]); bad > 0 {
				return nil, fmt.Errorf("gpu: sequence %d: %d of the %d logits at position %d are NaN or Inf (%w); the model's weights may hold NaN or Inf: check with rwkv info --check",
					row.seq, bad, V, row.pos, model.ErrNonFinite)
			}
			res[row.seq].Token = int(id)
		}
		for k, row := range ps.sampledRows {
			id := binary.LittleEndian.Uint32(words[4*(il.sampled+k):])
			if id == SamplerInvalidToken {
				return nil, fmt.Errorf("gpu: sequence %d: the sampler found no token to draw at position %d: the logits hold NaN or +Inf (%w), or every token is banned",
					row.seq, row.pos, model.ErrNonFinite)
			}
			res[row.seq].Token = int(id)
		}
		if ps.logits == nil {
			continue
		}
		raw, err := ps.logits.Wait()
		if err != nil {
			return nil, fmt.Errorf("gpu: step: %w", err)
		}
		vals := gpu.BytesF32(raw)
		for k, row := range ps.logitRows {
			l := vals[k*V : (k+1)*V]
			if err := model.CheckFinite(l, V, row.pos); err != nil {
				return nil, fmt.Errorf("gpu: sequence %d: %w", row.seq, err)
			}
			res[row.seq].Logits = append(res[row.seq].Logits, l...)
		}
	}
	return res, nil
}
