package main

import (
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

// TestGainOf: k = (1, 1), r = (1, −0.75): k·r = 0.25 from terms of
// magnitude 1.75 (cancellation 7); S = v·kᵀ with v = (1, −1), so y = S·r =
// (0.25, −0.25), var(y) = 0.0625 and the gain is 7·ε/(0.0625 + ε).
func TestGainOf(t *testing.T) {
	k, r := []float32{1, 1}, []float32{1, -0.75}
	S := []float32{1, 1, -1, -1}
	const eps = 64e-5
	g := gainOf(k, r, S, eps)
	require.Equal(t, 0.25, g.kr)
	require.Equal(t, 1.75, g.absKR)
	require.Equal(t, 0.0625, g.varY)
	require.InDelta(t, 7*eps/(0.0625+eps), g.gain, 1e-15)
	// The same head with a variance far below ε keeps the whole
	// cancellation: v = ±2^-10 gives var(y) = 0.0625·2^-20.
	const v = 1.0 / 1024
	S = []float32{v, v, -v, -v}
	g = gainOf(k, r, S, eps)
	require.Equal(t, 0.0625*v*v, g.varY)
	require.InDelta(t, 7*eps/(0.0625*v*v+eps), g.gain, 1e-12)
	require.Greater(t, g.gain, 6.99)
}

// TestVerifyTrace prints one row per layer of the tiny model (3 layers).
func TestVerifyTrace(t *testing.T) {
	d := gputest.OpenDevice(t)
	d.Close()
	out, _, err := run(t, "verify", "-m", fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_K_M.gguf"), "--tokens", "5,6", "--trace")
	require.NoError(t, err, out)
	i := strings.Index(out, "layer  gpu att")
	require.GreaterOrEqual(t, i, 0, out)
	rows := strings.Split(strings.TrimSpace(out[i:]), "\n")
	require.Len(t, rows, 4, out)
	for l, row := range rows[1:] {
		require.True(t, strings.HasPrefix(row, string(rune('0'+l))+" "), row)
		require.Len(t, strings.Fields(row), 12, row)
	}
}
