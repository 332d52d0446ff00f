package gpu

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckFits(t *testing.T) {
	d := OpenTestDevice(t)
	have, ok := d.DeviceMemory()
	if !ok {
		t.Skip("Vulkan reports no memory for this adapter")
	}
	require.Greater(t, have, uint64(0))
	require.NoError(t, d.CheckFits(have/2, "half"))
	err := d.CheckFits(have+1<<30, "the test model")
	require.ErrorIs(t, err, ErrTooBig)
	require.ErrorContains(t, err, "the test model needs")
	require.ErrorContains(t, err, "GiB")
}

func TestReadBandwidth(t *testing.T) {
	d := OpenTestDevice(t)
	bw, err := d.ReadBandwidth(8<<20, 1)
	require.NoError(t, err)
	// No speed assertion (a loaded machine may be arbitrarily slow): the
	// probe must run and give a finite positive rate.
	require.Greater(t, bw, 0.0)
	require.False(t, math.IsInf(bw, 0) || math.IsNaN(bw))
	t.Logf("streaming read: %.2f GB/s", bw/1e9)
}

func TestResetPeak(t *testing.T) {
	d := OpenTestDevice(t)
	b, err := d.NewBuffer("big", 8<<20)
	require.NoError(t, err)
	b.Release()
	require.GreaterOrEqual(t, d.PeakBytes(), uint64(8<<20))
	d.ResetPeak()
	require.Equal(t, d.AllocatedBytes(), d.PeakBytes())
}
