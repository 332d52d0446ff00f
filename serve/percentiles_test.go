package serve

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServePercentiles: nearest-rank percentiles of 1..100 ms, shuffled,
// and of one value.
func TestServePercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration((i*37)%100+1)*time.Millisecond)
	}
	require.Equal(t, Percentiles{P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond}, percentiles(ds))
	require.Equal(t, Percentiles{P50: 7, P95: 7, P99: 7}, percentiles([]time.Duration{7}))
	require.Equal(t, Percentiles{}, percentiles(nil))
}
