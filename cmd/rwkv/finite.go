package main

import (
	"fmt"
	"math"
)

// countNonFinite counts the NaN and ±Inf values of v.
func countNonFinite(v []float32) int {
	n := 0
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			n++
		}
	}
	return n
}

// firstNonFinite describes the first NaN or ±Inf of [T][vocab] logits as
// "first at position p, index i: NaN", or "none".
func firstNonFinite(v []float32, vocab int) string {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Sprintf("first at position %d, index %d: %v", i/vocab, i%vocab, x)
		}
	}
	return "none"
}

// checkFinite fails when [T][vocab] values hold NaN or ±Inf, naming what
// they are, how many and the first.
func checkFinite(what string, v []float32, vocab int) error {
	if n := countNonFinite(v); n > 0 {
		return fmt.Errorf("%s hold %d non-finite values (%s); if the model is at fault, rwkv info --check names its tensors", what, n, firstNonFinite(v, vocab))
	}
	return nil
}
