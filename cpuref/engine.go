package cpuref

import (
	"context"
	"fmt"
	"sync"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Engine is the CPU reference implementation of model.Engine. It is safe
// for concurrent use: each session has its own lock, and sequences of one
// step are computed one after the other (the reference favours plain code
// over speed), so every sequence's result is bit for bit what it would be
// alone.
type Engine struct {
	w *model.Weights
}

// New returns a CPU engine over validated weights. The weights' GGUF file
// must stay open while the engine is used.
func New(w *model.Weights) *Engine { return &Engine{w: w} }

// Config returns the model's hyperparameters.
func (e *Engine) Config() model.Config { return e.w.Config }

// Device is "cpu".
func (e *Engine) Device() string { return "cpu" }

// Weights returns the model the engine runs.
func (e *Engine) Weights() *model.Weights { return e.w }

// NewSession starts a sequence from the all-zero state. The CPU engine has
// no slot limit.
func (e *Engine) NewSession() (model.Session, error) {
	return &Session{e: e, state: model.NewState(e.w.Config), chosen: -1}, nil
}

// Close does nothing: the engine does not own the GGUF file.
func (e *Engine) Close() error { return nil }

// Session is one sequence on the CPU engine.
type Session struct {
	e       *Engine
	mu      sync.Mutex
	state   *model.State
	chosen  int           // the token chosen by the last WantToken step, -1 if none
	sampler *SamplerState // nil: WantToken takes the argmax
	closed  bool
}

// chunkTokens bounds the tokens processed together in a prefill, so that a
// long prompt does not need activations for all of its tokens at once; a
// cancelled step stops between chunks.
const chunkTokens = 64

var errClosed = fmt.Errorf("cpuref: session is %w", model.ErrClosed)

// Step advances each sequence by its tokens and returns what it asked for.
func (e *Engine) Step(ctx context.Context, seqs []model.Seq) ([]model.SeqResult, error) {
	c := e.w.Config
	if err := model.CheckStep(seqs, c.Vocab); err != nil {
		return nil, err
	}
	sessions := make([]*Session, len(seqs))
	for i, sq := range seqs {
		s, ok := sq.Session.(*Session)
		if !ok || s.e != e {
			return nil, fmt.Errorf("cpuref: sequence %d: the session belongs to another engine", i)
		}
		sessions[i] = s
	}
	results := make([]model.SeqResult, len(seqs))
	for i, sq := range seqs {
		r, err := sessions[i].step(ctx, sq)
		results[i] = r
		if err != nil {
			err = fmt.Errorf("cpuref: sequence %d: %w", i, err)
			if ctx.Err() == nil {
				return nil, err
			}
			for j := range results {
				results[j].Logits, results[j].Token = nil, -1
			}
			return nil, &model.StepError{Results: results, Err: err}
		}
	}
	return results, nil
}

// Submit runs the step at once (the CPU has nothing to overlap) and returns
// its results as an already finished Pending.
func (e *Engine) Submit(ctx context.Context, seqs []model.Seq) (model.Pending, error) {
	r, err := e.Step(ctx, seqs)
	if err != nil {
		return nil, err
	}
	return done(r), nil
}

// done is a Pending whose results are already known.
type done []model.SeqResult

func (d done) Wait() ([]model.SeqResult, error) { return d, nil }

// step runs one sequence of a step in chunks of chunkTokens.
func (s *Session) step(ctx context.Context, sq model.Seq) (model.SeqResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := model.SeqResult{Token: -1}
	if s.closed {
		return r, errClosed
	}
	tokens := sq.Tokens
	if sq.Continue {
		if s.chosen < 0 {
			return r, fmt.Errorf("cpuref: Continue: %w", model.ErrNoChosenToken)
		}
		tokens = append(append([]int(nil), tokens...), s.chosen)
	}
	V := s.e.w.Config.Vocab
	for lo := 0; lo < len(tokens); lo += chunkTokens {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		hi := min(lo+chunkTokens, len(tokens))
		var want []int // positions within the chunk whose logits are needed
		switch {
		case sq.Want == model.WantAll:
			for t := lo; t < hi; t++ {
				want = append(want, t-lo)
			}
		case (sq.Want == model.WantLast || sq.Want == model.WantToken) && hi == len(tokens):
			want = []int{hi - 1 - lo}
		}
		l, err := Forward(s.e.w, s.state, tokens[lo:hi], want)
		if err != nil {
			return r, err
		}
		r.Consumed = hi
		if err := model.CheckFinite(l, V, hi-len(want)); err != nil {
			return r, err
		}
		r.Logits = append(r.Logits, l...)
	}
	if sq.Want == model.WantToken {
		r.Token = model.Argmax(r.Logits)
		if s.sampler != nil {
			t, err := s.sampler.Sample(r.Logits)
			if err != nil {
				return r, fmt.Errorf("cpuref: sampling the token after position %d: %w", r.Consumed-1, err)
			}
			r.Token = t
		}
		s.chosen = r.Token
		r.Logits = nil
	}
	return r, nil
}

// Fork returns a new session with a copy of this one's state and chosen
// token.
func (s *Session) Fork() (model.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	f := &Session{e: s.e, state: s.state.Clone(), chosen: s.chosen}
	if s.sampler != nil {
		f.sampler = s.sampler.Clone()
	}
	return f, nil
}

// State returns a copy of the current state.
func (s *Session) State() (*model.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	return s.state.Clone(), nil
}

// SetState replaces the current state with a copy of st. The chosen token
// is forgotten.
func (s *Session) SetState(st *model.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.chosen = -1
	return s.state.CopyFrom(st)
}

// Reset returns to the all-zero state.
func (s *Session) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.state.Reset()
	s.chosen = -1
	return nil
}

// SetSampling sets the sampler of WantToken steps (nil: the argmax), with
// fresh penalty counts and random counter.
func (s *Session) SetSampling(p *model.Sampling) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if p == nil {
		s.sampler = nil
		return nil
	}
	st, err := NewSamplerState(*p, s.e.w.Config.Vocab)
	if err != nil {
		return err
	}
	s.sampler = st
	return nil
}

// Close ends the session.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Forward runs tokens through the model from state st (updated in place) and
// returns the logits of the positions listed in want, [len(want)][V]
// row-major. Layers are processed one after the other over all tokens, so
// every matrix is read once per call.
func Forward(w *model.Weights, st *model.State, tokens []int, want []int) ([]float32, error) {
	c := w.Config
	T := len(tokens)
	x := matrix(T, c.Dim)      // residual stream: [T][D]
	vFirst := matrix(T, c.Dim) // layer 0's value per token: [T][D]
	for t, id := range tokens {
		if err := EmbeddingRow(&w.Embed, id, x[t]); err != nil {
			return nil, err
		}
		LayerNorm(x[t], x[t], w.Ln0W, w.Ln0B, c.Eps)
	}
	for l := range w.Layers {
		if err := TimeMix(c, &w.Layers[l], l, st, x, vFirst); err != nil {
			return nil, fmt.Errorf("cpuref: layer %d time mix: %w", l, err)
		}
		if err := ChannelMix(c, &w.Layers[l], l, st, x); err != nil {
			return nil, fmt.Errorf("cpuref: layer %d channel mix: %w", l, err)
		}
	}
	return Head(w, x, want)
}

// matrix allocates rows float32 vectors of n elements in one block.
func matrix(rows, n int) [][]float32 {
	flat := make([]float32, rows*n)
	m := make([][]float32, rows)
	for i := range m {
		m[i] = flat[i*n : (i+1)*n]
	}
	return m
}

// TimeMix runs layer l's time-mix block (spec/rwkv7.md §3.2) over the T
// tokens of x, in place, carrying the layer's shift vector and WKV state.
//
//	x, vFirst: [T][D]
func TimeMix(c model.Config, L *model.Layer, l int, st *model.State, x, vFirst [][]float32) error {
	T, D := len(x), c.Dim
	xa := matrix(T, D)
	for t := range x {
		LayerNorm(xa[t], x[t], L.Ln1W, L.Ln1B, c.Eps)
	}
	// Token shift: six mixed inputs per token, rows r, w, k, v, a, g.
	var mixed [6][][]float32
	for m := range mixed {
		mixed[m] = matrix(T, D)
	}
	shift := st.AttShift(l)
	for t := range x {
		prev := shift
		if t > 0 {
			prev = xa[t-1]
		}
		for m := range mixed {
			TokenShift(mixed[m][t], xa[t], prev, L.Lerp[m])
		}
	}
	copy(shift, xa[T-1])

	r, k, v := matrix(T, D), matrix(T, D), matrix(T, D)
	if err := MatMul(&L.Wr, mixed[model.MixR], r); err != nil {
		return err
	}
	if err := MatMul(&L.Wk, mixed[model.MixK], k); err != nil {
		return err
	}
	if err := MatMul(&L.Wv, mixed[model.MixV], v); err != nil {
		return err
	}
	// The LoRA down projections with their activations: decay tanh(W1·x_w),
	// iclr A1·x_a, value residual V1·x_v (not in layer 0), gate σ(G1·x_g).
	hw, err := LoRADown(&L.W1, mixed[model.MixW], TanhInPlace)
	if err != nil {
		return err
	}
	ha, err := LoRADown(&L.A1, mixed[model.MixA], nil)
	if err != nil {
		return err
	}
	hg, err := LoRADown(&L.G1, mixed[model.MixG], SigmoidInPlace)
	if err != nil {
		return err
	}
	hv := make([][]float32, T)
	if l > 0 {
		if hv, err = LoRADown(&L.V1, mixed[model.MixV], nil); err != nil {
			return err
		}
	}
	// WKV-7 over the tokens in order, then the output projection.
	o := matrix(T, D)
	for t := range x {
		if err := WKVToken(c, L, l, st.WKV(l), r[t], k[t], v[t], vFirst[t], hw[t], ha[t], hv[t], hg[t], o[t]); err != nil {
			return err
		}
	}
	att := matrix(T, D)
	if err := MatMul(&L.Wo, o, att); err != nil {
		return err
	}
	for t := range x {
		Add(x[t], att[t])
	}
	return nil
}

// LoRADown returns act(down·x) for every token, the hidden vectors of a
// LoRA; act may be nil.
//
//	down: R×D; x: [T][D]; result: [T][R]
func LoRADown(down *model.Matrix, x [][]float32, act func([]float32)) ([][]float32, error) {
	h := matrix(len(x), down.Rows)
	if err := MatMul(down, x, h); err != nil {
		return nil, err
	}
	if act != nil {
		for t := range h {
			act(h[t])
		}
	}
	return h, nil
}

// WKVToken is one token of layer l's time mix between the projections and
// Wo: exactly what the GPU's fused WKV kernel computes per token. From the
// token's r, k, v and its LoRA hidden vectors it applies the LoRA up
// projections (decay w = exp(−0.606531·σ(w0 + W2·hw)), iclr a = σ(a0 +
// A2·ha), gate g = G2·hg, value residual), normalises the key, updates the
// head states S with the WKV-7 rule, and writes o = (GroupNorm(y) + bonus)
// ⊙ g. Layer 0 records v into vFirst; later layers blend v toward it. k and
// v are updated in place (the adjusted key, the blended value).
//
//	r, k, v, vFirst, o: [D]; hw: [R_w]; ha: [R_a]; hv: [R_v] (unused in
//	layer 0); hg: [R_g]; S: [H][N][N]
func WKVToken(c model.Config, L *model.Layer, l int, S, r, k, v, vFirst, hw, ha, hv, hg, o []float32) error {
	D, H := c.Dim, c.Heads
	decay, a, g := make([]float32, D), make([]float32, D), make([]float32, D)
	if err := MatVec(&L.W2, hw, decay); err != nil {
		return err
	}
	Decay(decay, L.W0, decay, model.DecayScale)
	if err := MatVec(&L.A2, ha, a); err != nil {
		return err
	}
	SigmoidOfBiasSum(a, L.A0, a)
	if err := MatVec(&L.G2, hg, g); err != nil {
		return err
	}
	if l == 0 {
		copy(vFirst, v)
	} else {
		gate := make([]float32, D)
		if err := MatVec(&L.V2, hv, gate); err != nil {
			return err
		}
		SigmoidOfBiasSum(gate, L.V0, gate)
		ValueResidual(v, vFirst, gate)
	}
	kk, alpha, beta, y := make([]float32, D), make([]float32, D), make([]float32, D), make([]float32, D)
	Mul(kk, k, L.KK)
	L2NormGroups(kk, kk, H, model.L2NormFloor) // κ̂ from the unadjusted k
	KeyAdjust(k, a, L.KA)
	for i := range kk {
		alpha[i] = -kk[i]
		beta[i] = kk[i] * a[i]
	}
	WKV7(S, r, decay, k, v, alpha, beta, y, H)
	GroupNorm(o, y, L.LnXW, L.LnXB, H, model.GroupNormEps)
	Bonus(o, r, k, L.RK, v, H)
	Mul(o, o, g)
	return nil
}

// ChannelMix runs layer l's channel-mix block (spec/rwkv7.md §3.3) over the
// T tokens of x, in place: x += W_v·relu(W_k·shift(ln2(x)))².
//
//	x: [T][D]
func ChannelMix(c model.Config, L *model.Layer, l int, st *model.State, x [][]float32) error {
	T, D := len(x), c.Dim
	xf, xk := matrix(T, D), matrix(T, D)
	for t := range x {
		LayerNorm(xf[t], x[t], L.Ln2W, L.Ln2B, c.Eps)
	}
	shift := st.FfnShift(l)
	for t := range x {
		prev := shift
		if t > 0 {
			prev = xf[t-1]
		}
		TokenShift(xk[t], xf[t], prev, L.FfnLerp)
	}
	copy(shift, xf[T-1])
	hidden := matrix(T, c.FFN)
	if err := MatMul(&L.FfnKey, xk, hidden); err != nil {
		return err
	}
	for t := range hidden {
		ReluSquare(hidden[t])
	}
	out := matrix(T, D)
	if err := MatMul(&L.FfnValue, hidden, out); err != nil {
		return err
	}
	for t := range x {
		Add(x[t], out[t])
	}
	return nil
}

// Head returns the logits of the tokens listed in want: W_out·ln_out(x[t]),
// [len(want)][V] row-major.
//
//	x: [T][D]
func Head(w *model.Weights, x [][]float32, want []int) ([]float32, error) {
	if len(want) == 0 {
		return nil, nil
	}
	c := w.Config
	xs := matrix(len(want), c.Dim)
	for i, t := range want {
		LayerNorm(xs[i], x[t], w.LnOutW, w.LnOutB, c.Eps)
	}
	logits := matrix(len(want), c.Vocab)
	if err := MatMul(&w.Head, xs, logits); err != nil {
		return nil, err
	}
	return logits[0][:len(want)*c.Vocab], nil
}
