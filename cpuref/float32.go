package cpuref

import (
	"fmt"
	"math"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file is a float32 twin of the forward pass: the same operations in
// the same order as Forward, but every sum (matrix rows, norms, the WKV
// read-out, the bonus) accumulated in float32, one term after the other,
// as a straightforward float32 implementation would. It is not a second
// reference: it measures how much a model amplifies float32 rounding (its
// distance from Forward, which sums in float64), so that `rwkv verify` can
// judge a float32 engine against the model's own noise floor. The
// element-wise operations are shared with Forward (each rounds once to
// float32, as float32 arithmetic does).

// Float32Logits runs tokens from the all-zero state through the float32
// twin and returns every position's logits, [T][V] row-major. Like
// Session.Forward it processes at most 64 tokens per pass.
func Float32Logits(w *model.Weights, tokens []int) ([]float32, error) {
	c := w.Config
	if err := model.CheckTokens(tokens, c.Vocab); err != nil {
		return nil, err
	}
	st := model.NewState(c)
	var logits []float32
	for lo := 0; lo < len(tokens); lo += chunkTokens {
		hi := min(lo+chunkTokens, len(tokens))
		l, err := Float32Forward(w, st, tokens[lo:hi])
		if err != nil {
			return nil, err
		}
		logits = append(logits, l...)
	}
	return logits, nil
}

// Float32Forward is Forward with float32 sums: it runs tokens from state st
// (updated in place) and returns every token's logits, [T][V] row-major.
func Float32Forward(w *model.Weights, st *model.State, tokens []int) ([]float32, error) {
	c := w.Config
	if err := model.CheckTokens(tokens, c.Vocab); err != nil {
		return nil, err
	}
	T := len(tokens)
	x := matrix(T, c.Dim)      // [T][D]
	vFirst := matrix(T, c.Dim) // [T][D]
	for t, id := range tokens {
		if err := EmbeddingRow(&w.Embed, id, x[t]); err != nil {
			return nil, err
		}
		layerNorm32(x[t], x[t], w.Ln0W, w.Ln0B, c.Eps)
	}
	for l := range w.Layers {
		if err := timeMix32(c, &w.Layers[l], l, st, x, vFirst); err != nil {
			return nil, fmt.Errorf("cpuref: float32 twin: layer %d time mix: %w", l, err)
		}
		if err := channelMix32(c, &w.Layers[l], l, st, x); err != nil {
			return nil, fmt.Errorf("cpuref: float32 twin: layer %d channel mix: %w", l, err)
		}
	}
	xs := matrix(T, c.Dim)
	for t := range x {
		layerNorm32(xs[t], x[t], w.LnOutW, w.LnOutB, c.Eps)
	}
	logits := matrix(T, c.Vocab)
	if err := matMul32(&w.Head, xs, logits); err != nil {
		return nil, err
	}
	return logits[0][:T*c.Vocab], nil
}

// timeMix32 is TimeMix with float32 sums.
//
//	x, vFirst: [T][D]
func timeMix32(c model.Config, L *model.Layer, l int, st *model.State, x, vFirst [][]float32) error {
	T, D, H := len(x), c.Dim, c.Heads
	xa := matrix(T, D)
	for t := range x {
		layerNorm32(xa[t], x[t], L.Ln1W, L.Ln1B, c.Eps)
	}
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
	for _, p := range []struct {
		m   *model.Matrix
		in  [][]float32
		out [][]float32
	}{{&L.Wr, mixed[model.MixR], r}, {&L.Wk, mixed[model.MixK], k}, {&L.Wv, mixed[model.MixV], v}} {
		if err := matMul32(p.m, p.in, p.out); err != nil {
			return err
		}
	}
	decay := matrix(T, D)
	if err := loRA32(&L.W1, &L.W2, mixed[model.MixW], decay, TanhInPlace); err != nil {
		return err
	}
	for t := range decay {
		Decay(decay[t], L.W0, decay[t], model.DecayScale)
	}
	if l == 0 {
		for t := range v {
			copy(vFirst[t], v[t])
		}
	} else {
		gate := matrix(T, D)
		if err := loRA32(&L.V1, &L.V2, mixed[model.MixV], gate, nil); err != nil {
			return err
		}
		for t := range v {
			SigmoidOfBiasSum(gate[t], L.V0, gate[t])
			ValueResidual(v[t], vFirst[t], gate[t])
		}
	}
	g, a := matrix(T, D), matrix(T, D)
	if err := loRA32(&L.G1, &L.G2, mixed[model.MixG], g, SigmoidInPlace); err != nil {
		return err
	}
	if err := loRA32(&L.A1, &L.A2, mixed[model.MixA], a, nil); err != nil {
		return err
	}
	for t := range a {
		SigmoidOfBiasSum(a[t], L.A0, a[t])
	}

	wkv := st.WKV(l)
	kk, alpha, beta, y, o := make([]float32, D), make([]float32, D), make([]float32, D), make([]float32, D), matrix(T, D)
	for t := range x {
		Mul(kk, k[t], L.KK)
		l2NormGroups32(kk, kk, H, model.L2NormFloor)
		KeyAdjust(k[t], a[t], L.KA)
		for i := range kk {
			alpha[i] = -kk[i]
			beta[i] = kk[i] * a[t][i]
		}
		wkv7x32(wkv, r[t], decay[t], k[t], v[t], alpha, beta, y, H)
		groupNorm32(o[t], y, L.LnXW, L.LnXB, H, model.GroupNormEps)
		bonus32(o[t], r[t], k[t], L.RK, v[t], H)
		Mul(o[t], o[t], g[t])
	}
	att := matrix(T, D)
	if err := matMul32(&L.Wo, o, att); err != nil {
		return err
	}
	for t := range x {
		Add(x[t], att[t])
	}
	return nil
}

// channelMix32 is ChannelMix with float32 sums.
//
//	x: [T][D]
func channelMix32(c model.Config, L *model.Layer, l int, st *model.State, x [][]float32) error {
	T, D := len(x), c.Dim
	xf, xk := matrix(T, D), matrix(T, D)
	for t := range x {
		layerNorm32(xf[t], x[t], L.Ln2W, L.Ln2B, c.Eps)
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
	if err := matMul32(&L.FfnKey, xk, hidden); err != nil {
		return err
	}
	for t := range hidden {
		ReluSquare(hidden[t])
	}
	out := matrix(T, D)
	if err := matMul32(&L.FfnValue, hidden, out); err != nil {
		return err
	}
	for t := range x {
		Add(x[t], out[t])
	}
	return nil
}

// loRA32 is LoRA with float32 sums.
//
//	down: R×D; up: D×R; x, dst: [T][D]
func loRA32(down, up *model.Matrix, x, dst [][]float32, act func([]float32)) error {
	h := matrix(len(x), down.Rows)
	if err := matMul32(down, x, h); err != nil {
		return err
	}
	if act != nil {
		for t := range h {
			act(h[t])
		}
	}
	return matMul32(up, h, dst)
}

// matMul32 is MatMul with each row's dot product summed in float32, in
// column order. Rows are split across goroutines.
//
//	W: Rows×Cols; xs: [T][Cols]; ys: [T][Rows]
func matMul32(W *model.Matrix, xs, ys [][]float32) error {
	return matMulWith(W, xs, ys, dot32)
}

// dot32 returns Σ a_i·b_i summed in float32 in index order.
//
//	a, b: [n]
func dot32(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// layerNorm32 is LayerNorm with float32 mean and variance.
//
//	dst, x, w, b: [D]
func layerNorm32(dst, x, w, b []float32, eps float32) {
	mean, inv := meanInvStd32(x, eps)
	for i := range x {
		dst[i] = (x[i]-mean)*inv*w[i] + b[i]
	}
}

// groupNorm32 is GroupNorm with float32 means and variances.
//
//	dst, x, w, b: [groups·n]
func groupNorm32(dst, x, w, b []float32, groups int, eps float32) {
	n := len(x) / groups
	for g := 0; g < groups; g++ {
		lo, hi := g*n, (g+1)*n
		mean, inv := meanInvStd32(x[lo:hi], eps)
		for i := lo; i < hi; i++ {
			dst[i] = (x[i]-mean)*inv*w[i] + b[i]
		}
	}
}

// meanInvStd32 is meanInvStd in float32.
func meanInvStd32(x []float32, eps float32) (mean, inv float32) {
	var sum float32
	for _, v := range x {
		sum += v
	}
	mean = sum / float32(len(x))
	var sq float32
	for _, v := range x {
		d := v - mean
		sq += d * d
	}
	return mean, 1 / float32(math.Sqrt(float64(sq/float32(len(x))+eps)))
}

// l2NormGroups32 is L2NormGroups with a float32 sum of squares.
//
//	dst, x: [groups·n]
func l2NormGroups32(dst, x []float32, groups int, floor float32) {
	n := len(x) / groups
	for g := 0; g < groups; g++ {
		lo, hi := g*n, (g+1)*n
		var sq float32
		for _, v := range x[lo:hi] {
			sq += v * v
		}
		inv := 1 / max(float32(math.Sqrt(float64(sq))), floor)
		for i := lo; i < hi; i++ {
			dst[i] = x[i] * inv
		}
	}
}

// wkv7x32 is WKV7 in float32.
//
//	S: [H][N][N]; r, w, k, v, alpha, beta, y: [H·N]
func wkv7x32(S, r, w, k, v, alpha, beta, y []float32, heads int) {
	n := len(r) / heads
	for h := 0; h < heads; h++ {
		base := h * n
		for i := 0; i < n; i++ {
			row := S[(base+i)*n : (base+i+1)*n]
			var sa float32
			for j := 0; j < n; j++ {
				sa += alpha[base+j] * row[j]
			}
			vi := v[base+i]
			var acc float32
			for j := 0; j < n; j++ {
				row[j] = row[j]*w[base+j] + vi*k[base+j] + sa*beta[base+j]
				acc += row[j] * r[base+j]
			}
			y[base+i] = acc
		}
	}
}

// bonus32 is Bonus with a float32 sum.
//
//	o, r, k, rk, v: [H·N]
func bonus32(o, r, k, rk, v []float32, heads int) {
	n := len(o) / heads
	for h := 0; h < heads; h++ {
		var rho float32
		for j := h * n; j < (h+1)*n; j++ {
			rho += r[j] * k[j] * rk[j]
		}
		for i := h * n; i < (h+1)*n; i++ {
			o[i] += rho * v[i]
		}
	}
}
