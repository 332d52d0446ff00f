package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// traceFirstToken runs one token through the engine, the CPU reference and
// the CPU reference with float32 sums, and prints, layer by layer, how far
// the engine's and the float32 run's states are from the reference's:
// relative L2 of the time-mix shift (ln1 of the layer's input), the
// channel-mix shift (ln2 after the time mix) and the WKV state. Where the
// engine's error jumps in the same layers as the float32 run's, the model is
// amplifying rounding there; a jump of the engine's alone points at a kernel.
func traceFirstToken(w io.Writer, eng model.Engine, weights *model.Weights, token int) error {
	state := func(e model.Engine) (*model.State, error) {
		s, err := e.NewSession()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if _, err := model.Forward(context.Background(), e, s, []int{token}, model.WantLast); err != nil {
			return nil, err
		}
		return s.State()
	}
	got, err := state(eng)
	if err != nil {
		return fmt.Errorf("trace: %s: %w", eng.Device(), err)
	}
	ref, err := state(cpuref.New(weights))
	if err != nil {
		return fmt.Errorf("trace: cpu reference: %w", err)
	}
	f32 := model.NewState(weights.Config)
	if _, err := cpuref.Float32Forward(weights, f32, []int{token}); err != nil {
		return fmt.Errorf("trace: float32 sums: %w", err)
	}
	fmt.Fprintf(w, "\nstate after token %d, relative L2 distance from the CPU reference (float64 sums),\n", token)
	fmt.Fprintln(w, "and the head of each layer that amplifies rounding most (gain: see headGain):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tgpu att\tgpu ffn\tgpu wkv\tf32 att\tf32 ffn\tf32 wkv\thead\tgain\tk·r\tΣ|k·r|\tvar(y)")
	rel := func(a, b []float32) float64 { return numcmp.Compare(a, b).RelL2 }
	for l := 0; l < weights.Config.Layers; l++ {
		g, err := worstHeadGain(weights, l, ref)
		if err != nil {
			return fmt.Errorf("trace: layer %d: %w", l, err)
		}
		fmt.Fprintf(tw, "%d\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\t%d\t%.3g\t%.3g\t%.3g\t%.3g\n", l,
			rel(got.AttShift(l), ref.AttShift(l)), rel(got.FfnShift(l), ref.FfnShift(l)), rel(got.WKV(l), ref.WKV(l)),
			rel(f32.AttShift(l), ref.AttShift(l)), rel(f32.FfnShift(l), ref.FfnShift(l)), rel(f32.WKV(l), ref.WKV(l)),
			g.head, g.gain, g.kr, g.absKR, g.varY)
	}
	return tw.Flush()
}

// headGain is how much one head of a layer amplifies relative rounding
// errors of k and r at a sequence's first token. There the WKV state is
// S = v·kᵀ, so the head's read-out is y = v·(k·r): if k·r is a sum of
// terms that nearly cancel, its relative error is Σ|k_j·r_j| / |k·r| times
// theirs; and if var(y) is far below the group norm's epsilon, the norm
// does not divide that scale away, so the head's output carries it:
//
//	gain = Σ|k_j·r_j| / |k·r| · ε / (var(y) + ε)
type headGain struct {
	head                  int
	gain, kr, absKR, varY float64
}

// worstHeadGain recomputes layer l's r and adjusted k at the first token
// from the reference state after it (shift_att holds ln1 of the layer's
// input, the previous token's is zero) and returns the head of largest
// gain.
func worstHeadGain(w *model.Weights, l int, st *model.State) (headGain, error) {
	c, L := w.Config, &w.Layers[l]
	xa, zero := st.AttShift(l), make([]float32, c.Dim)
	mix := func(m int) [][]float32 {
		x := make([]float32, c.Dim)
		cpuref.TokenShift(x, xa, zero, L.Lerp[m])
		return [][]float32{x}
	}
	r, k, a := [][]float32{make([]float32, c.Dim)}, [][]float32{make([]float32, c.Dim)}, [][]float32{make([]float32, c.Dim)}
	if err := cpuref.MatMul(&L.Wr, mix(model.MixR), r); err != nil {
		return headGain{}, err
	}
	if err := cpuref.MatMul(&L.Wk, mix(model.MixK), k); err != nil {
		return headGain{}, err
	}
	ha, err := cpuref.LoRADown(&L.A1, mix(model.MixA), nil)
	if err != nil {
		return headGain{}, err
	}
	if err := cpuref.MatMul(&L.A2, ha, a); err != nil {
		return headGain{}, err
	}
	cpuref.SigmoidOfBiasSum(a[0], L.A0, a[0])
	cpuref.KeyAdjust(k[0], a[0], L.KA)
	S, N := st.WKV(l), c.HeadSize
	var worst headGain
	for h := 0; h < c.Heads; h++ {
		g := gainOf(k[0][h*N:(h+1)*N], r[0][h*N:(h+1)*N], S[h*N*N:(h+1)*N*N], float64(model.GroupNormEps))
		g.head = h
		if h == 0 || g.gain > worst.gain {
			worst = g
		}
	}
	return worst, nil
}

// gainOf computes one head's gain from its adjusted key and receptance and
// its WKV state after the first token (y = S·r).
//
//	k, r: [N]; S: [N][N]
func gainOf(k, r, S []float32, eps float64) headGain {
	var g headGain
	for j := range r {
		p := float64(k[j]) * float64(r[j])
		g.kr += p
		g.absKR += math.Abs(p)
	}
	N := len(r)
	y := make([]float64, N)
	var mean float64
	for i := range y {
		for j, s := range S[i*N : (i+1)*N] {
			y[i] += float64(s) * float64(r[j])
		}
		mean += y[i] / float64(N)
	}
	for _, v := range y {
		g.varY += (v - mean) * (v - mean) / float64(N)
	}
	g.gain = g.absKR / math.Abs(g.kr) * eps / (g.varY + eps)
	return g
}
