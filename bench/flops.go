package bench

import (
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// MatrixParams counts the weights of a model's matrix products
// (spec/rwkv7.md §9, P_mm = Body + Head), each used for one multiply and
// one add per token it is applied to.
type MatrixParams struct {
	// Body: every layer's W_r, W_k, W_v, W_o, the w, a and g LoRAs (down and
	// up), the v LoRA from layer 1 on (layer 0's is never read), and the
	// channel-mix key and value matrices. Applied to every token.
	Body int64
	// Head: the output head, V·D. Applied only to the tokens whose logits
	// are asked for. The embedding is a row lookup, not a product, and is
	// not counted.
	Head int64
}

// CountMatrixParams counts the matrix weights of a model.
func CountMatrixParams(w *model.Weights) MatrixParams {
	var p MatrixParams
	for _, m := range w.Matrices() {
		p.Body += int64(m.Rows) * int64(m.Cols)
	}
	p.Head = int64(w.Head.Rows) * int64(w.Head.Cols)
	p.Body -= p.Head
	return p
}

// PrefillFLOPs is the matrix arithmetic of one prefill of tokens tokens
// that returns the logits of outputs of them (spec/rwkv7.md §9):
// 2·Body·tokens + 2·Head·outputs. The WKV recurrence (9·D·N per layer and
// token, under 1% at the published shapes) and the element-wise operations
// are not counted.
func (p MatrixParams) PrefillFLOPs(tokens, outputs int) int64 {
	return 2*p.Body*int64(tokens) + 2*p.Head*int64(outputs)
}

// CPUMultiplyAddRate measures the host's float32 multiply-add throughput in
// FLOP/s (2 per multiply-add): every core runs 8 independent dependent
// chains a ← a·m + c (2^22 steps); best of reps runs after a warm-up. It
// returns 0 if a chain did not reach the recurrence's fixed point (work that
// did not run).
func CPUMultiplyAddRate(reps int) float64 {
	const iters, chains = 1 << 22, 8
	const m, c = float32(1 - 1.0/(1<<16)), float32(1.0 / (1 << 16)) // fixed point 1
	workers := runtime.GOMAXPROCS(0)
	out := make([][chains]float32, workers)
	best := time.Duration(0)
	for rep := 0; rep <= max(reps, 1); rep++ {
		start := time.Now()
		var wg sync.WaitGroup
		for wi := 0; wi < workers; wi++ {
			wg.Add(1)
			go func(a *[chains]float32) {
				defer wg.Done()
				a0, a1, a2, a3, a4, a5, a6, a7 := float32(0), float32(0.5), float32(1.5), float32(2), float32(2.5), float32(3), float32(3.5), float32(4)
				for n := 0; n < iters; n++ {
					a0, a1, a2, a3 = a0*m+c, a1*m+c, a2*m+c, a3*m+c
					a4, a5, a6, a7 = a4*m+c, a5*m+c, a6*m+c, a7*m+c
				}
				*a = [chains]float32{a0, a1, a2, a3, a4, a5, a6, a7}
			}(&out[wi])
		}
		wg.Wait()
		t := time.Since(start)
		if rep > 0 && (best == 0 || t < best) {
			best = t
		}
	}
	// a = 1 + (a₀ − 1)·m^iters, m^iters = e^-64: every lane ends at 1, up
	// to float32 rounding of at most 2^-24/(1 − m) = 0.004; a chain that
	// ran fewer than ~2^16·ln(300) steps stays more than 0.01 away.
	for _, a := range out {
		for _, v := range a {
			if math.Abs(float64(v)-1) > 0.01 {
				return 0
			}
		}
	}
	return 2 * chains * iters * float64(workers) / best.Seconds()
}
