package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"
)

// TestJudgeTolerance: max(--tol, factor × noise), by hand.
func TestJudgeTolerance(t *testing.T) {
	j := newJudge(1e-4, 2, numcmp.Stats{RelL2: 3e-4, MaxAbs: 5e-3}, 4)
	require.InDelta(t, 6e-4, j.tol, 1e-18)
	require.InDelta(t, 1e-2, j.tieGap, 1e-18)
	j = newJudge(1e-4, 2, numcmp.Stats{RelL2: 1e-6, MaxAbs: 2e-5}, 4)
	require.Equal(t, 1e-4, j.tol, "a quiet model keeps --tol")
	require.InDelta(t, 4e-5, j.tieGap, 1e-18)
}

// TestJudgeVerdicts: two positions of 4 logits (values exact in float32);
// the errors, argmax changes and near ties are worked out by hand.
func TestJudgeVerdicts(t *testing.T) {
	const g = 1.0 / 2048 // the near tie's gap, 4.9e-4
	ref := []float32{
		1.0, 1 - g, 0.25, -1, // top two g apart
		2.0, 0.5, 0.125, 0, // a clear winner
	}
	j := judge{tol: 1e-3, tieGap: 1e-3, vocab: 4}

	// Position 0 swaps its top two (a near tie: gap g ≤ 1e-3).
	got := append([]float32(nil), ref...)
	got[0], got[1] = 1-g, 1.0
	v := j.check(got, ref)
	require.Equal(t, []int{0}, v.nearTies)
	require.Empty(t, v.argmax)
	// ‖got − ref‖ = √2·g; ‖ref‖² = 1 + (1−g)² + 1/16 + 1 + 4 + 1/4 + 1/64.
	norm := math.Sqrt(1 + (1-g)*(1-g) + 1.0/16 + 1 + 4 + 1.0/4 + 1.0/64)
	require.InDelta(t, math.Sqrt2*g/norm, v.stats.RelL2, 1e-12)
	require.False(t, v.failed(j), "a near tie within the noise passes")

	// The same swap with no noise floor (tie gap 0) fails.
	strict := judge{tol: 1e-3, vocab: 4}
	v = strict.check(got, ref)
	require.Equal(t, []int{0}, v.argmax)
	require.True(t, v.failed(strict))

	// Position 1 picks index 1 (gap 1.5): an argmax failure.
	got = append([]float32(nil), ref...)
	got[5] = 2.5
	v = j.check(got, ref)
	require.Equal(t, []int{1}, v.argmax)
	require.True(t, v.failed(j))
	require.Contains(t, v.describe(got, ref, j), "position 1, index 1: got 2.5, want 0.5")

	// 2^-10 added everywhere: rel L2 √8·2^-10/‖ref‖ = 1.16e-3 fails a
	// tolerance of 1e-3 and passes one of 2e-3.
	got = append([]float32(nil), ref...)
	for i := range got {
		got[i] += 1.0 / 1024
	}
	v = j.check(got, ref)
	require.InDelta(t, math.Sqrt(8)/1024/norm, v.stats.RelL2, 1e-12)
	require.True(t, v.failed(j))
	loose := judge{tol: 2e-3, tieGap: 1e-3, vocab: 4}
	require.False(t, loose.check(got, ref).failed(loose))

	// A NaN fails whatever the tolerance.
	got = append([]float32(nil), ref...)
	got[7] = float32(math.NaN())
	v = loose.check(got, ref)
	require.Equal(t, 1, v.stats.NonFinite)
	require.True(t, v.failed(loose))
}
