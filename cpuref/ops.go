package cpuref

import "math"

// This file holds the element-wise and normalisation operations of the
// RWKV-7 forward pass (spec/rwkv7.md §3), one function per operation. Every
// reduction accumulates in float64 and every result is rounded to float32
// once, so each output is within float32 rounding of the exact value.

// LayerNorm writes (x − mean)/sqrt(var + eps) ⊙ w + b into dst.
//
//	dst, x, w, b: [D]
func LayerNorm(dst, x, w, b []float32, eps float32) {
	mean, inv := meanInvStd(x, eps)
	for i := range x {
		dst[i] = float32((float64(x[i])-mean)*inv*float64(w[i]) + float64(b[i]))
	}
}

// GroupNorm applies a layer norm to each of the groups contiguous slices of
// x separately (ln_x: one group per head), with the full-length affine w, b.
//
//	dst, x, w, b: [groups·n]
func GroupNorm(dst, x, w, b []float32, groups int, eps float32) {
	n := len(x) / groups
	for g := 0; g < groups; g++ {
		lo, hi := g*n, (g+1)*n
		mean, inv := meanInvStd(x[lo:hi], eps)
		for i := lo; i < hi; i++ {
			dst[i] = float32((float64(x[i])-mean)*inv*float64(w[i]) + float64(b[i]))
		}
	}
}

// meanInvStd returns the mean of x and 1/sqrt(biased variance + eps).
func meanInvStd(x []float32, eps float32) (mean, inv float64) {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean = sum / float64(len(x))
	var sq float64
	for _, v := range x {
		d := float64(v) - mean
		sq += d * d
	}
	return mean, 1 / math.Sqrt(sq/float64(len(x))+float64(eps))
}

// L2NormGroups divides each of the groups slices of x by its Euclidean norm
// (at least floor).
//
//	dst, x: [groups·n]
func L2NormGroups(dst, x []float32, groups int, floor float32) {
	n := len(x) / groups
	for g := 0; g < groups; g++ {
		lo, hi := g*n, (g+1)*n
		var sq float64
		for _, v := range x[lo:hi] {
			sq += float64(v) * float64(v)
		}
		inv := 1 / math.Max(math.Sqrt(sq), float64(floor))
		for i := lo; i < hi; i++ {
			dst[i] = float32(float64(x[i]) * inv)
		}
	}
}

// TokenShift mixes the current and previous token's activations:
// dst = cur + (prev − cur) ⊙ mu.
//
//	dst, cur, prev, mu: [D]
func TokenShift(dst, cur, prev, mu []float32) {
	for i := range cur {
		dst[i] = cur[i] + (prev[i]-cur[i])*mu[i]
	}
}

// Sigmoid is the logistic function 1/(1+e^−z) in float64.
func Sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// SigmoidInPlace applies the logistic function to every element.
//
//	x: [n]
func SigmoidInPlace(x []float32) {
	for i, v := range x {
		x[i] = float32(Sigmoid(float64(v)))
	}
}

// TanhInPlace applies tanh to every element.
//
//	x: [n]
func TanhInPlace(x []float32) {
	for i, v := range x {
		x[i] = float32(math.Tanh(float64(v)))
	}
}

// Decay turns the decay pre-activation into the per-channel multiplicative
// decay: w = exp(−0.606531·σ(w0 + lora)).
//
//	dst, w0, lora: [D]
func Decay(dst, w0, lora []float32, scale float32) {
	for i := range dst {
		raw := float64(w0[i]) + float64(lora[i])
		dst[i] = float32(math.Exp(-float64(scale) * Sigmoid(raw)))
	}
}

// SigmoidOfBiasSum computes dst = σ(bias + x) (the iclr a and the value
// residual gate).
//
//	dst, bias, x: [D]
func SigmoidOfBiasSum(dst, bias, x []float32) {
	for i := range dst {
		dst[i] = float32(Sigmoid(float64(bias[i]) + float64(x[i])))
	}
}

// ValueResidual blends a layer's value toward the first layer's value:
// v ← v + (vFirst − v) ⊙ gate.
//
//	v, vFirst, gate: [D]
func ValueResidual(v, vFirst, gate []float32) {
	for i := range v {
		v[i] = float32(float64(v[i]) + (float64(vFirst[i])-float64(v[i]))*float64(gate[i]))
	}
}

// KeyAdjust applies the in-context learning rate to the key:
// k ← k ⊙ (1 + (a − 1) ⊙ k_a).
//
//	k, a, ka: [D]
func KeyAdjust(k, a, ka []float32) {
	for i := range k {
		k[i] = float32(float64(k[i]) * (1 + (float64(a[i])-1)*float64(ka[i])))
	}
}

// Mul writes the element-wise product x ⊙ y into dst.
//
//	dst, x, y: [n]
func Mul(dst, x, y []float32) {
	for i := range dst {
		dst[i] = x[i] * y[i]
	}
}

// Add adds y to x in place (residual connections).
//
//	x, y: [n]
func Add(x, y []float32) {
	for i := range x {
		x[i] += y[i]
	}
}

// ReluSquare applies max(0, x)² to every element (channel-mix activation).
//
//	x: [F]
func ReluSquare(x []float32) {
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		x[i] = float32(float64(v) * float64(v))
	}
}

// WKV7 advances one layer's WKV state by one token and reads it out
// (spec/rwkv7.md §3.2 step 13). For each head h and value row i:
//
//	sa   = Σ_j α_j·S[i][j]                      (state before the update)
//	S[i][j] ← S[i][j]·w_j + v_i·k_j + sa·β_j
//	y_i  = Σ_j S[i][j]·r_j                       (state after the update)
//
// with α = −κ̂ and β = κ̂ ⊙ a passed in directly.
//
//	S: [H][N][N] (i = value row, j = key column); r, w, k, v, alpha, beta, y: [H·N]
func WKV7(S, r, w, k, v, alpha, beta, y []float32, heads int) {
	n := len(r) / heads
	for h := 0; h < heads; h++ {
		base := h * n
		for i := 0; i < n; i++ {
			row := S[(base+i)*n : (base+i+1)*n]
			var sa float64
			for j := 0; j < n; j++ {
				sa += float64(alpha[base+j]) * float64(row[j])
			}
			vi := float64(v[base+i])
			var acc float64
			for j := 0; j < n; j++ {
				s := float64(row[j])*float64(w[base+j]) + vi*float64(k[base+j]) + sa*float64(beta[base+j])
				row[j] = float32(s)
				acc += float64(row[j]) * float64(r[base+j])
			}
			y[base+i] = float32(acc)
		}
	}
}

// Bonus adds the per-head "r·k·r_k" term: o_i += (Σ_{j in head} r_j·k_j·rk_j)·v_i.
//
//	o, r, k, rk, v: [H·N]
func Bonus(o, r, k, rk, v []float32, heads int) {
	n := len(o) / heads
	for h := 0; h < heads; h++ {
		var rho float64
		for j := h * n; j < (h+1)*n; j++ {
			rho += float64(r[j]) * float64(k[j]) * float64(rk[j])
		}
		for i := h * n; i < (h+1)*n; i++ {
			o[i] = float32(float64(o[i]) + rho*float64(v[i]))
		}
	}
}
