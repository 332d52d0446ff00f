package cpuref

import (
	"errors"
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Engine is the CPU reference implementation of model.Engine.
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

// NewSession starts a sequence from the all-zero state.
func (e *Engine) NewSession() (model.Session, error) {
	return &Session{e: e, state: model.NewState(e.w.Config)}, nil
}

// Close does nothing: the engine does not own the GGUF file.
func (e *Engine) Close() error { return nil }

// Session is one sequence on the CPU engine.
type Session struct {
	e      *Engine
	state  *model.State
	closed bool
}

// chunkTokens bounds the tokens processed together in a prefill, so that a
// long prompt does not need activations for all of its tokens at once.
const chunkTokens = 64

var errClosed = errors.New("cpuref: session is closed")

// Forward consumes tokens and returns the logits selected by out.
func (s *Session) Forward(tokens []int, out model.Output) ([]float32, error) {
	if s.closed {
		return nil, errClosed
	}
	c := s.e.w.Config
	if err := model.CheckTokens(tokens, c.Vocab); err != nil {
		return nil, err
	}
	var logits []float32
	for lo := 0; lo < len(tokens); lo += chunkTokens {
		hi := min(lo+chunkTokens, len(tokens))
		var want []int // positions within the chunk whose logits are needed
		switch {
		case out == model.OutputAll:
			for t := lo; t < hi; t++ {
				want = append(want, t-lo)
			}
		case out == model.OutputLast && hi == len(tokens):
			want = []int{hi - 1 - lo}
		}
		l, err := Forward(s.e.w, s.state, tokens[lo:hi], want)
		if err != nil {
			return nil, err
		}
		logits = append(logits, l...)
	}
	return logits, nil
}

// ForwardArgmax consumes tokens and returns the most likely next token.
func (s *Session) ForwardArgmax(tokens []int) (int, error) {
	l, err := s.Forward(tokens, model.OutputLast)
	if err != nil {
		return 0, err
	}
	return model.Argmax(l), nil
}

// State returns a copy of the current state.
func (s *Session) State() (*model.State, error) {
	if s.closed {
		return nil, errClosed
	}
	return s.state.Clone(), nil
}

// SetState replaces the current state with a copy of st.
func (s *Session) SetState(st *model.State) error {
	if s.closed {
		return errClosed
	}
	return s.state.CopyFrom(st)
}

// Reset returns to the all-zero state.
func (s *Session) Reset() error {
	if s.closed {
		return errClosed
	}
	s.state.Reset()
	return nil
}

// Close ends the session.
func (s *Session) Close() error {
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
	T, D, H := len(x), c.Dim, c.Heads
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

	// Decay: w = exp(−0.606531·σ(w0 + W2·tanh(W1·x_w))).
	decay := matrix(T, D)
	if err := LoRA(&L.W1, &L.W2, mixed[model.MixW], decay, TanhInPlace); err != nil {
		return err
	}
	for t := range decay {
		Decay(decay[t], L.W0, decay[t], model.DecayScale)
	}

	// Value residual: layer 0 records v_first, later layers blend toward it.
	if l == 0 {
		for t := range v {
			copy(vFirst[t], v[t])
		}
	} else {
		gate := matrix(T, D)
		if err := LoRA(&L.V1, &L.V2, mixed[model.MixV], gate, nil); err != nil {
			return err
		}
		for t := range v {
			SigmoidOfBiasSum(gate[t], L.V0, gate[t])
			ValueResidual(v[t], vFirst[t], gate[t])
		}
	}

	// Gate g = G2·σ(G1·x_g) and in-context learning rate a = σ(a0 + A2·A1·x_a).
	g, a := matrix(T, D), matrix(T, D)
	if err := LoRA(&L.G1, &L.G2, mixed[model.MixG], g, SigmoidInPlace); err != nil {
		return err
	}
	if err := LoRA(&L.A1, &L.A2, mixed[model.MixA], a, nil); err != nil {
		return err
	}
	for t := range a {
		SigmoidOfBiasSum(a[t], L.A0, a[t])
	}

	// WKV-7 over the tokens in order, then group norm, bonus and gate.
	wkv := st.WKV(l)
	kk, alpha, beta, y, o := make([]float32, D), make([]float32, D), make([]float32, D), make([]float32, D), matrix(T, D)
	for t := range x {
		Mul(kk, k[t], L.KK)
		L2NormGroups(kk, kk, H, model.L2NormFloor) // κ̂ from the unadjusted k
		KeyAdjust(k[t], a[t], L.KA)
		for i := range kk {
			alpha[i] = -kk[i]
			beta[i] = kk[i] * a[t][i]
		}
		WKV7(wkv, r[t], decay[t], k[t], v[t], alpha, beta, y, H)
		GroupNorm(o[t], y, L.LnXW, L.LnXB, H, model.GroupNormEps)
		Bonus(o[t], r[t], k[t], L.RK, v[t], H)
		Mul(o[t], o[t], g[t])
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

// LoRA computes dst = up·act(down·x) for every token; act may be nil (no
// activation between the two products).
//
//	down: R×D; up: D×R; x, dst: [T][D]
func LoRA(down, up *model.Matrix, x, dst [][]float32, act func([]float32)) error {
	h := matrix(len(x), down.Rows)
	if err := MatMul(down, x, h); err != nil {
		return err
	}
	if act != nil {
		for t := range h {
			act(h[t])
		}
	}
	return MatMul(up, h, dst)
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
