package gpu

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFMAExpected checks the probe's closed form by hand for invocation 0
// (lanes start at j/4 + k/32) and against the float32 recurrence run on the
// host for a few invocations.
func TestFMAExpected(t *testing.T) {
	// Σ_j Σ_k (j/4 + k/32) = 4·(0+…+7)/4 + 8·(0+1+2+3)/32 = 28 + 1.5 = 29.5,
	// so the sum is 32 + (29.5 − 32)·m^4096 with m = 1 − 2^-11.
	decay := math.Pow(1-1.0/2048, 4096)
	require.InDelta(t, 0.1352, decay, 1e-4)
	require.InDelta(t, 32+(29.5-32)*decay, fmaExpected(fmaProbe, 0), 1e-9)
	for _, i := range []uint32{0, 17, 63, 64, 1000} {
		var s float32
		for j := uint32(0); j < 8; j++ {
			for k := uint32(0); k < 4; k++ {
				a := float32(fmaStart(i, j, k))
				for n := uint32(0); n < fmaProbe.iters; n++ {
					a = a*fmaProbe.m + fmaProbe.c
				}
				s += a
			}
		}
		require.InDelta(t, fmaExpected(fmaProbe, i), float64(s), fmaTolerance, "invocation %d", i)
	}
	// Half the steps, or one chain's lane left out, is far outside the
	// tolerance.
	half := fmaProbe
	half.iters /= 2
	require.Greater(t, math.Abs(fmaExpected(half, 5)-fmaExpected(fmaProbe, 5)), 40*fmaTolerance)
	require.Greater(t, 1+(fmaStart(5, 0, 0)-1)*decay, 10*fmaTolerance)
}

func TestCheckFMAFindsDroppedWork(t *testing.T) {
	out := make([]float32, 70)
	for i := range out {
		out[i] = float32(fmaExpected(fmaProbe, uint32(i)))
	}
	require.NoError(t, checkFMA(fmaProbe, out))
	half := fmaProbe
	half.iters /= 2
	out[66] = float32(fmaExpected(half, 66))
	require.ErrorContains(t, checkFMA(fmaProbe, out), "invocation 66")
	out[66] = float32(math.NaN())
	require.ErrorContains(t, checkFMA(fmaProbe, out), "invocation 66")
}

func TestMultiplyAddRate(t *testing.T) {
	d := openTestDevice(t)
	r, err := d.MultiplyAddRate(1)
	require.NoError(t, err)
	// No speed assertion (a loaded machine may be arbitrarily slow): the
	// probe must run, pass its host check and give a finite positive rate.
	require.Greater(t, r, 0.0)
	require.False(t, math.IsInf(r, 0) || math.IsNaN(r))
	t.Logf("multiply-add: %.2f GFLOP/s", r/1e9)
}
