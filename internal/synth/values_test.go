package synth

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

type moments struct{ n, mean, std, min, max float64 }

// groupMoments returns the statistics of every tensor group of an F32 file:
// per-layer tensors are pooled over the layers (layer 0's copies of the iclr
// LoRA and the layer-0 value and channel-mix value matrices, whose statistics
// differ, apart).
func groupMoments(t *testing.T, f *gguf.File) map[string]moments {
	t.Helper()
	type acc struct{ n, sum, sq, lo, hi float64 }
	accs := map[string]*acc{}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		layer, suffix := splitName(ti.Name)
		key := suffix
		if layer == 0 && strings.Contains(suffix, "_v") {
			key = "blk.0." + suffix
		}
		data, err := f.TensorData(ti)
		require.NoError(t, err)
		vals := make([]float32, ti.Elements())
		require.NoError(t, gguf.DequantizeRow(ti.Type, data, vals))
		a := accs[key]
		if a == nil {
			a = &acc{lo: math.Inf(1), hi: math.Inf(-1)}
			accs[key] = a
		}
		for _, v := range vals {
			x := float64(v)
			a.n++
			a.sum += x
			a.sq += x * x
			a.lo, a.hi = math.Min(a.lo, x), math.Max(a.hi, x)
		}
	}
	out := map[string]moments{}
	for k, a := range accs {
		m := a.sum / a.n
		out[k] = moments{n: a.n, mean: m, std: math.Sqrt(a.sq/a.n - m*m), min: a.lo, max: a.hi}
	}
	return out
}

// TestValueStatisticsMatchFixture checks that each tensor group of the tiny
// F32 file has the mean and spread of the fixture model's (whose generator
// followed RWKV-7's initialisation), and that clamped groups stay in [0, 1].
func TestValueStatisticsMatchFixture(t *testing.T) {
	ref := groupMoments(t, openGGUF(t, fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")))
	got := groupMoments(t, openGGUF(t, writeTiny(t, gguf.F32, 1)))
	require.Len(t, got, len(ref))
	for k, r := range ref {
		g, ok := got[k]
		require.True(t, ok, k)
		require.Equal(t, r.n, g.n, k)
		// Two samples of n values: allow 4 standard errors of the
		// difference plus a small systematic margin.
		se := math.Sqrt(2 / r.n)
		require.InDelta(t, r.mean, g.mean, (0.1+4*se)*r.std+0.01, "%s: mean %.4g, fixture %.4g", k, g.mean, r.mean)
		require.InEpsilon(t, r.std, g.std, 0.05+4*se/math.Sqrt2, "%s: std %.4g, fixture %.4g", k, g.std, r.std)
		if strings.Contains(k, "lerp") {
			require.True(t, g.min >= 0 && g.max <= 1, "%s: [%g, %g]", k, g.min, g.max)
		}
	}
}

func TestGaussTable(t *testing.T) {
	tab := gaussTable()
	var sum, sq float64
	for i, v := range tab {
		if i > 0 {
			require.Greater(t, v, tab[i-1])
		}
		require.Equal(t, -v, tab[len(tab)-1-i])
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	require.InDelta(t, 0, sum, 1e-3)
	require.InDelta(t, 1, math.Sqrt(sq/float64(len(tab))), 1e-3)

	// Rows are independent streams; a stream's draws look standard normal.
	g := rowStream(tensorSeed(1, "x"), 0)
	h := rowStream(tensorSeed(1, "x"), 1)
	require.NotEqual(t, g.next(), h.next())
	z := make([]float32, 1<<16+3)
	g.normals(z)
	var m, s float64
	for _, v := range z {
		m += float64(v)
		s += float64(v) * float64(v)
	}
	m /= float64(len(z))
	require.InDelta(t, 0, m, 0.02)
	require.InDelta(t, 1, math.Sqrt(s/float64(len(z))-m*m), 0.02)
	require.NotEqual(t, tensorSeed(1, "a"), tensorSeed(2, "a"))
	require.NotEqual(t, tensorSeed(1, "a"), tensorSeed(1, "b"))
}
