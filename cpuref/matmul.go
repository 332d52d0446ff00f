package cpuref

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// MatMul computes ys[t] = W·xs[t] for every token t, reading W in its stored
// block format: each row is dequantized once into a float32 scratch row and
// dotted with every token's input in float64. Because the same arithmetic is
// used for one token and for many, a prefill equals token-by-token steps
// bit for bit. Rows are split across goroutines.
//
//	W: Rows×Cols; xs: [T][Cols]; ys: [T][Rows]
func MatMul(W *model.Matrix, xs, ys [][]float32) error {
	return matMulWith(W, xs, ys, func(a, b []float32) float32 { return float32(Dot(a, b)) })
}

// matMulWith is MatMul with the dot product of a row and an input given:
// Dot (float64 sums) for the reference, dot32 for the float32 twin.
func matMulWith(W *model.Matrix, xs, ys [][]float32, dot func(a, b []float32) float32) error {
	if len(xs) != len(ys) {
		return fmt.Errorf("cpuref: %s: %d inputs but %d outputs", W.Name, len(xs), len(ys))
	}
	for t := range xs {
		if len(xs[t]) != W.Cols || len(ys[t]) != W.Rows {
			return fmt.Errorf("cpuref: %s: shapes x[%d]=%d y[%d]=%d do not fit %d×%d", W.Name, t, len(xs[t]), t, len(ys[t]), W.Rows, W.Cols)
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if W.Rows*W.Cols*len(xs) < 1<<16 {
		workers = 1
	}
	chunk := (W.Rows + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for wi := 0; wi < workers; wi++ {
		lo, hi := wi*chunk, min((wi+1)*chunk, W.Rows)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func(wi, lo, hi int) {
			defer wg.Done()
			errs[wi] = matMulRows(W, xs, ys, lo, hi, dot)
		}(wi, lo, hi)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// matMulRows computes output rows [lo, hi) of MatMul.
func matMulRows(W *model.Matrix, xs, ys [][]float32, lo, hi int, dot func(a, b []float32) float32) error {
	row := make([]float32, W.Cols)
	for r := lo; r < hi; r++ {
		if err := gguf.DequantizeRow(W.Type, W.Row(r), row); err != nil {
			return fmt.Errorf("cpuref: %s row %d: %w", W.Name, r, err)
		}
		for t, x := range xs {
			ys[t][r] = dot(row, x)
		}
	}
	return nil
}

// MatVec computes y = W·x for one vector.
//
//	W: Rows×Cols; x: [Cols]; y: [Rows]
func MatVec(W *model.Matrix, x, y []float32) error {
	return MatMul(W, [][]float32{x}, [][]float32{y})
}

// Dot returns Σ a_i·b_i accumulated in float64 (four partial sums; every
// product of two float32 values is exact in float64).
//
//	a, b: [n]
func Dot(a, b []float32) float64 {
	var s0, s1, s2, s3 float64
	n := len(a) &^ 3
	b = b[:len(a)]
	for i := 0; i < n; i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for i := n; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// EmbeddingRow dequantizes row id of the embedding table into dst.
//
//	E: V×D; dst: [D]
func EmbeddingRow(E *model.Matrix, id int, dst []float32) error {
	if err := gguf.DequantizeRow(E.Type, E.Row(id), dst); err != nil {
		return fmt.Errorf("cpuref: %s row %d: %w", E.Name, id, err)
	}
	return nil
}
