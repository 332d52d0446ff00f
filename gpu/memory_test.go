package gpu

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

func TestCheckFits(t *testing.T) {
	d := openTestDevice(t)
	have, ok := d.DeviceMemory()
	if !ok {
		testenv.NoGPU(t, "Vulkan reports no memory for adapter %s", d.Info())
	}
	require.Greater(t, have, uint64(0))
	require.NoError(t, d.CheckFits(have/2, "half"))
	err := d.CheckFits(have+1<<30, "the test model")
	require.ErrorIs(t, err, ErrTooBig)
	require.ErrorContains(t, err, "the test model needs")
	require.ErrorContains(t, err, "GiB")
}

// TestReadBandwidth runs the probe `rwkv bench` uses for its roofline: the
// read kernel must visit every word of the source exactly once per pass
// (checked against per-workgroup sums computed here from the same data), and
// the rate must be finite and positive. There is no speed floor.
func TestReadBandwidth(t *testing.T) {
	d := openTestDevice(t)
	p, err := d.newReadProbe(3 << 20)
	require.NoError(t, err)
	defer p.release()
	n := int(p.src.Size() / 4)
	require.Equal(t, 3<<20/4, n, "a whole number of MiB under the binding limit")
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%13) - 4 // small integers: every partial sum is exact in float32
	}
	require.NoError(t, d.WriteF32(p.src, 0, src))
	_, err = p.run(2)
	require.NoError(t, err)
	got, err := d.ReadF32(p.out, 0, readProbeGroups)
	require.NoError(t, err)
	// Invocation g (of readProbeGroups·readProbeWG) sums the vec4 words g,
	// g + invocations, ...; workgroup w holds invocations [w·WG, (w+1)·WG).
	want := make([]float64, readProbeGroups)
	invocations := readProbeGroups * readProbeWG
	for i, v := range src {
		word := i / 4
		want[(word%invocations)/readProbeWG] += float64(v)
	}
	for w := range want {
		if float64(got[w]) != want[w] {
			t.Fatalf("workgroup %d sums %v, want %v (first mismatch)", w, got[w], want[w])
		}
	}

	// No speed assertion (a loaded machine may be arbitrarily slow): the
	// probe must run and give a finite positive rate.
	bw, err := d.ReadBandwidth(8<<20, 1)
	require.NoError(t, err)
	// No speed assertion (a loaded machine may be arbitrarily slow): the
	// probe must run and give a finite positive rate.
	require.Greater(t, bw, 0.0)
	require.False(t, math.IsInf(bw, 0) || math.IsNaN(bw))
	t.Logf("streaming read: %.2f GB/s", bw/1e9)
}

func TestResetPeak(t *testing.T) {
	d := openTestDevice(t)
	b, err := d.NewBuffer("big", 8<<20)
	require.NoError(t, err)
	b.Release()
	require.GreaterOrEqual(t, d.PeakBytes(), uint64(8<<20))
	d.ResetPeak()
	require.Equal(t, d.AllocatedBytes(), d.PeakBytes())
}
