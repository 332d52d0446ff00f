// Package numcmp compares float32 results with a reference: relative L2
// error, max abs difference, first mismatch and argmax agreement, and reads
// little-endian float32 files. Tests (through internal/numtest) and
// `rwkv verify` use it.
package numcmp

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// Stats compares an implementation's values with a reference.
type Stats struct {
	RelL2     float64 // ‖got − ref‖ / ‖ref‖
	MaxAbs    float64 // max |got − ref|
	MaxAbsAt  int     // index of MaxAbs
	NonFinite int     // values of got that are NaN or ±Inf
}

// Compare computes Stats over two equally long slices.
func Compare(got, ref []float32) Stats {
	var s Stats
	var num, den float64
	for i := range ref {
		g, r := float64(got[i]), float64(ref[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			s.NonFinite++
			continue
		}
		d := g - r
		num += d * d
		den += r * r
		if math.Abs(d) > s.MaxAbs {
			s.MaxAbs, s.MaxAbsAt = math.Abs(d), i
		}
	}
	if den > 0 {
		s.RelL2 = math.Sqrt(num / den)
	} else {
		s.RelL2 = math.Sqrt(num)
	}
	return s
}

// FirstMismatch returns the first index where |got − ref| > abs + rel·|ref|
// (or got is not finite), and -1 when there is none.
func FirstMismatch(got, ref []float32, abs, rel float64) int {
	for i := range ref {
		g, r := float64(got[i]), float64(ref[i])
		if math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g-r) > abs+rel*math.Abs(r) {
			return i
		}
	}
	return -1
}

// RowArgmaxMismatches lists the rows (of width n) whose argmax differs.
func RowArgmaxMismatches(got, ref []float32, n int) []int {
	var rows []int
	for r := 0; r*n < len(ref); r++ {
		if argmax(got[r*n:(r+1)*n]) != argmax(ref[r*n:(r+1)*n]) {
			rows = append(rows, r)
		}
	}
	return rows
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Describe formats index i of a [rows][n] layout with both values.
func Describe(got, ref []float32, i, n int) string {
	return fmt.Sprintf("position %d, index %d: got %.9g, want %.9g", i/n, i%n, got[i], ref[i])
}

// ReadF32 reads a little-endian float32 file.
func ReadF32(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("numcmp: %s: %d bytes is not a whole number of float32", path, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
