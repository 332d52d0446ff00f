package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

func loadGolden(t *testing.T) *model.Weights {
	t.Helper()
	p := filepath.Join(t.TempDir(), "golden.gguf")
	require.NoError(t, numtest.WriteGolden(p))
	f, err := gguf.Open(p)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	w, err := model.Load(f)
	require.NoError(t, err)
	return w
}

// TestTokenTrafficGolden checks the bytes-per-token formula by hand on the
// all-F32 golden model (L=2, D=128, N=64, F=512, ranks 32, V=257).
func TestTokenTrafficGolden(t *testing.T) {
	w := loadGolden(t)
	const L, D, N, F, R, V = 2, 128, 64, 512, 32, 257
	// Per layer: r, k, v, o (4·D²), FFN (2·D·F), w/a/g LoRAs (2·D·R each),
	// v LoRA only in layer 1; plus the head V·D and one embedding row D.
	elems := L*(4*D*D+2*D*F+3*2*D*R) + (L-1)*2*D*R + V*D + D
	tr := TokenTraffic(w)
	require.Equal(t, int64(4*elems), tr.Weights)
	perSeq := 4*(19*D*L+4*D) + 2*4*L*D*N + 2*8*L*D + 4*V
	require.Equal(t, int64(perSeq), tr.PerSeq)
	require.Equal(t, tr.Weights+3*tr.PerSeq, tr.Step(3))
}

// TestTokenTrafficQuantized uses the Q4_K_M fixture: Q4_K matrices (144
// bytes per 256), a Q6_K head (210 per 256), F32 LoRAs.
func TestTokenTrafficQuantized(t *testing.T) {
	f, err := gguf.Open(fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_K_M.gguf"))
	require.NoError(t, err)
	defer f.Close()
	w, err := model.Load(f)
	require.NoError(t, err)
	const L, D, F, V = 3, 256, 1024, 1024
	q4k := func(n int) int { return n / 256 * 144 }
	main := L * (q4k(4*D*D) + q4k(2*D*F))
	lora := 4 * (L*D*(32+64+96)*2 + (L-1)*D*32*2) // F32: w, a, g everywhere, v from layer 1
	head := V * D / 256 * 210
	embedRow := q4k(D)
	require.Equal(t, int64(main+lora+head+embedRow), TokenTraffic(w).Weights)
	require.Equal(t, gguf.Q4_K, MainType(w))
}

func TestStatsAndRoofline(t *testing.T) {
	m, sd := Stats([]float64{10, 12, 14})
	require.Equal(t, 12.0, m)
	require.InDelta(t, 2.0, sd, 1e-12)
	m, sd = Stats([]float64{5})
	require.Equal(t, 5.0, m)
	require.Equal(t, 0.0, sd)
}

// TestRunCPU runs a tiny benchmark end to end on the CPU engine and checks
// the table's arithmetic: tg GB/s = bytes per step × steps/s, fraction =
// GB/s / bandwidth; pp GFLOP/s = matrix FLOPs × prefills/s, fraction =
// GFLOP/s / multiply-add rate.
func TestRunCPU(t *testing.T) {
	w := loadGolden(t)
	e := cpuref.New(w)
	tg := Target{Name: "golden", Weights: w, Engine: e, FileSize: 1 << 20, Params: 12345, Roofline: 10e9, FMARate: 20e9}
	rs, err := Run(tg, Config{Prompt: 8, Gen: 4, Reps: 2, Batches: []int{1, 2}})
	require.NoError(t, err)
	require.Len(t, rs, 3)
	require.Equal(t, []string{"pp8", "tg4", "tg4@b2"}, []string{rs[0].Test, rs[1].Test, rs[2].Test})
	tr := TokenTraffic(w)
	for i, r := range rs {
		require.Greater(t, r.TokensPerS, 0.0)
		require.Equal(t, "cpu", r.Backend)
		require.Equal(t, 2, r.Reps)
		require.Equal(t, 10.0, r.RooflineGBPerS)
		require.Equal(t, 20.0, r.FMAProbeGFLOPPerS)
		if i == 0 {
			require.Equal(t, int64(0), r.BytesPerStep, "pp rows are not judged by bandwidth")
			require.Equal(t, 0.0, r.GBPerS)
			// 2·450560·8 + 2·32896 (TestCountMatrixParamsGolden).
			require.Equal(t, int64(7274752), r.MatrixFLOPs)
			wantGF := 7274752 * r.TokensPerS / 8 / 1e9
			require.InDelta(t, wantGF, r.GFLOPPerS, 1e-12*wantGF)
			require.InDelta(t, r.GFLOPPerS/20, r.FMAFraction, 1e-15)
			continue
		}
		require.Equal(t, int64(0), r.MatrixFLOPs, "tg rows are not judged by arithmetic")
		require.Equal(t, tr.Step(r.Batch), r.BytesPerStep)
		wantGB := float64(r.BytesPerStep) * r.TokensPerS / float64(r.Batch) / 1e9
		require.InDelta(t, wantGB, r.GBPerS, 1e-9*math.Max(1, wantGB))
		require.InDelta(t, r.GBPerS/10, r.RooflineFraction, 1e-12)
	}
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rs))
	require.Contains(t, buf.String(), "| golden F32")
	require.Contains(t, buf.String(), "tg4@b2")
	require.Contains(t, buf.String(), "GFLOP/s fma")
	require.Contains(t, buf.String(), "of 10.0 GB/s read")
	buf.Reset()
	require.NoError(t, WriteJSON(&buf, rs))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &obj))
	for _, k := range []string{"model", "type", "device", "test", "batch", "tokens_per_s", "stddev", "gb_per_s", "roofline_fraction",
		"matrix_flops", "gflop_per_s", "fma_probe_gflop_per_s", "fma_fraction", "dispatches_per_token", "peak_gpu_bytes"} {
		require.Contains(t, obj, k)
	}
	buf.Reset()
	require.NoError(t, WriteCSV(&buf, rs))
	records, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 4)
	for _, rec := range records {
		require.Len(t, rec, len(csvHeader))
	}
	require.Equal(t, "7274752", records[1][15], "matrix_flops of the pp row")
}

// TestRunGPU runs the same tiny benchmark on the GPU engine (lavapipe in CI).
func TestRunGPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	defer d.Close()
	w := loadGolden(t)
	e, err := engine.New(d, w, engine.Options{StateSlots: 2})
	require.NoError(t, err)
	defer e.Close()
	rs, err := Run(Target{Name: "golden", Weights: w, Engine: e, Roofline: 1e9, FMARate: 1e10}, Config{Prompt: 8, Gen: 4, Reps: 1, Batches: []int{1, 2}, Profile: true})
	require.NoError(t, err)
	require.Len(t, rs, 3)
	for _, r := range rs {
		require.Equal(t, "webgpu", r.Backend)
		require.Equal(t, e.DispatchesPerToken(), r.DispatchesPerToken)
		require.Greater(t, r.PeakGPUBytes, uint64(0))
	}
	require.InDelta(t, 7274752*rs[0].TokensPerS/8/1e9, rs[0].GFLOPPerS, 1e-9, "pp8 GFLOP/s")
	require.InDelta(t, rs[0].GFLOPPerS/10, rs[0].FMAFraction, 1e-12)
	require.InDelta(t, float64(TokenTraffic(w).Step(2))*rs[2].TokensPerS/2/1e9, rs[2].GBPerS, 1e-9, "tg4@b2 GB/s")
	require.NotEmpty(t, rs[1].Profile, "profile of the tg test")
	require.Greater(t, rs[1].HostDispatchMicros, 0.0, "host time per dispatch")
	require.InDelta(t, rs[1].HostStepMicros, rs[1].HostRecordMicros+rs[1].HostEncodeMicros, 1e-6*rs[1].HostStepMicros+1e-9)
	require.Greater(t, CPUReadBandwidth(8<<20, 1), 0.0)
}
