package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

// TestBenchCommandCPU: pp rows report GFLOP/s against the multiply-add
// probe, tg rows GB/s against the read probe, both probes measured in the
// run; the matrix FLOPs of pp8 on the tiny model are 2·2686976·8 +
// 2·262144 (bench.TestCountMatrixParamsFixture).
func TestBenchCommandCPU(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-Q8_0.gguf")
	out, _, err := run(t, "bench", "--device", "cpu", "-m", model, "-p", "8", "-n", "2", "-r", "1", "-b", "1,2")
	require.NoError(t, err)
	require.Contains(t, out, "| t/s ")
	require.Contains(t, out, " GFLOP/s ")
	lines := strings.Split(out, "\n")
	var pp, tg string
	for _, l := range lines {
		switch {
		case strings.Contains(l, " pp8 "):
			pp = l
		case strings.Contains(l, " tg2 "):
			tg = l
		}
	}
	require.Contains(t, pp, "GFLOP/s fma", out)
	require.Contains(t, tg, "GB/s read", out)

	out, _, err = run(t, "bench", "--device", "cpu", "-m", model, "-p", "8", "-n", "2", "-r", "1", "-b", "2", "--json")
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 3, "pp8, tg2@b2 and tg2@b2 chat (the sampled row --sample adds)")
	var ppRow, tgRow map[string]any
	require.NoError(t, json.Unmarshal([]byte(rows[0]), &ppRow))
	require.NoError(t, json.Unmarshal([]byte(rows[1]), &tgRow))
	require.Equal(t, float64(2*2686976*8+2*262144), ppRow["matrix_flops"])
	require.Greater(t, ppRow["fma_probe_gflop_per_s"], 0.0)
	require.Greater(t, ppRow["fma_fraction"], 0.0)
	require.Equal(t, 0.0, ppRow["gb_per_s"])
	require.Equal(t, "tg2@b2", tgRow["test"])
	require.Greater(t, tgRow["gb_per_s"], 0.0)
	require.Greater(t, tgRow["roofline_fraction"], 0.0)
	require.Equal(t, 0.0, tgRow["matrix_flops"])
	var chatRow map[string]any
	require.NoError(t, json.Unmarshal([]byte(rows[2]), &chatRow))
	require.Equal(t, "tg2@b2 chat", chatRow["test"])
	require.Equal(t, "chat", chatRow["sampling"])
}
