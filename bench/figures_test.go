package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// TestCountMatrixParamsGolden: the golden model (L=2, D=128, F=512, ranks
// 32, V=257): per layer 4·D² + 2·D·F + 3·2·D·R = 221184, the v LoRA of
// layer 1 2·D·R = 8192, so Body = 2·221184 + 8192 = 450560; Head = 257·128.
func TestCountMatrixParamsGolden(t *testing.T) {
	p := CountMatrixParams(loadGolden(t))
	require.Equal(t, MatrixParams{Body: 450560, Head: 32896}, p)
	require.Equal(t, int64(2*450560*8+2*32896), p.PrefillFLOPs(8, 1))
	require.Equal(t, int64(2*450560*8+2*32896*8), p.PrefillFLOPs(8, 8))
}

// TestCountMatrixParamsFixture: the tiny fixture (L=3, D=256, F=1024,
// ranks w 32, a 64, v 32, g 96, V=1024): per layer 4·65536 + 2·256·1024 +
// 2·256·192 = 884736, v LoRAs of layers 1-2 2·2·256·32 = 32768.
func TestCountMatrixParamsFixture(t *testing.T) {
	f, err := gguf.Open(fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_K_M.gguf"))
	require.NoError(t, err)
	defer f.Close()
	w, err := model.Load(f)
	require.NoError(t, err)
	require.Equal(t, MatrixParams{Body: 3*884736 + 32768, Head: 1024 * 256}, CountMatrixParams(w))
}

// TestFiguresByHand feeds known counts and durations.
func TestFiguresByHand(t *testing.T) {
	tr := Traffic{Weights: 1_000_000_000, PerSeq: 1_000_000}
	// Batch 1: 16 steps in 2 s = 8 t/s; a step moves 1.001e9 bytes, 8 steps/s.
	tps := DecodeTokensPerS(1, 16, 2*time.Second)
	require.Equal(t, 8.0, tps)
	gb := DecodeGBPerS(tr.Step(1), tps, 1)
	require.InDelta(t, 8.008, gb, 1e-12)
	require.InDelta(t, 0.8008, Fraction(gb, 10), 1e-15)
	// Batch 8: 16 steps of 8 sequences in 2 s = 64 t/s aggregate, still 8
	// steps/s; a step moves 1e9 + 8·1e6 bytes.
	tps = DecodeTokensPerS(8, 16, 2*time.Second)
	require.Equal(t, 64.0, tps)
	gb = DecodeGBPerS(tr.Step(8), tps, 8)
	require.InDelta(t, 8.064, gb, 1e-12)
	require.InDelta(t, 0.8064, Fraction(gb, 10), 1e-15)
	// pp64 in 0.5 s: 128 t/s; 2·90e6·64 + 2·50e6·1 = 11.62e9 FLOP per
	// prefill, 2 prefills/s.
	p := MatrixParams{Body: 90_000_000, Head: 50_000_000}
	tps = TokensPerS(64, 500*time.Millisecond)
	require.Equal(t, 128.0, tps)
	require.Equal(t, int64(11_620_000_000), p.PrefillFLOPs(64, 1))
	gf := PrefillGFLOPPerS(p.PrefillFLOPs(64, 1), 64, tps)
	require.InDelta(t, 23.24, gf, 1e-12)
	require.InDelta(t, 0.2324, Fraction(gf, 100), 1e-15)
	require.Equal(t, 0.0, Fraction(gf, 0), "unknown probe")
}

// tick returns a clock that advances by step at every reading.
func tick(step time.Duration) func() time.Time {
	now := time.Unix(0, 0)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

// TestRunArithmeticByHand runs the benchmark on the golden model with a
// clock that reads 1 s more at every reading, so every timed run lasts
// exactly 1 s, and checks every figure against hand-computed values:
// traffic of the golden model (TestTokenTrafficGolden) weights 1934336
// bytes, 157700 per sequence; matrix params 450560 + head 32896.
func TestRunArithmeticByHand(t *testing.T) {
	w := loadGolden(t)
	tg := Target{Name: "golden", Weights: w, Engine: cpuref.New(w), Roofline: 10e9, FMARate: 20e9}
	rs, err := Run(tg, Config{Prompt: 8, Gen: 4, Reps: 2, Batches: []int{1, 8}, clock: tick(time.Second)})
	require.NoError(t, err)
	require.Len(t, rs, 3)
	pp, tg1, tg8 := rs[0], rs[1], rs[2]

	// pp8: 8 tokens in 1 s; 2·450560·8 + 2·32896 = 7274752 FLOP a second.
	require.Equal(t, "pp8", pp.Test)
	require.Equal(t, 8.0, pp.TokensPerS)
	require.Equal(t, 0.0, pp.Stddev)
	require.InDelta(t, 0.007274752, pp.GFLOPPerS, 1e-15)
	require.InDelta(t, 0.007274752/20, pp.FMAFraction, 1e-15)

	// tg4: 4 steps in 1 s = 4 t/s; 4 steps/s of 1934336 + 157700 bytes.
	require.Equal(t, "tg4", tg1.Test)
	require.Equal(t, 4.0, tg1.TokensPerS)
	require.Equal(t, int64(2092036), tg1.BytesPerStep)
	require.InDelta(t, 0.008368144, tg1.GBPerS, 1e-15)
	require.InDelta(t, 0.0008368144, tg1.RooflineFraction, 1e-15)

	// tg4@b8: 8 sequences × 4 steps in 1 s = 32 t/s aggregate, still 4
	// steps/s, each of 1934336 + 8·157700 = 3195936 bytes.
	require.Equal(t, "tg4@b8", tg8.Test)
	require.Equal(t, 8, tg8.Batch)
	require.Equal(t, 32.0, tg8.TokensPerS)
	require.Equal(t, int64(3195936), tg8.BytesPerStep)
	require.InDelta(t, 0.012783744, tg8.GBPerS, 1e-15)
	require.InDelta(t, 0.0012783744, tg8.RooflineFraction, 1e-15)
}

// TestTableMarksFiguresAboveTheProbe: a fraction above 100% carries a *
// and the table explains it; figures below do not.
func TestTableMarksFiguresAboveTheProbe(t *testing.T) {
	base := Result{Model: "m", Type: "Q4_K", Backend: "webgpu", Batch: 1, RooflineGBPerS: 100, FMAProbeGFLOPPerS: 1000}
	pp := base
	pp.Test, pp.TokensPerS, pp.MatrixFLOPs = "pp512", 1000, 1
	pp.GFLOPPerS, pp.FMAFraction = 500, 0.5
	tg := base
	tg.Test, tg.BytesPerStep = "tg128", 1
	tg.GBPerS, tg.RooflineFraction = 103, 1.03

	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, []Result{pp}))
	out := buf.String()
	require.Contains(t, out, "50.0% of 1000.0 GFLOP/s fma")
	require.NotContains(t, out, "*")

	buf.Reset()
	require.NoError(t, WriteTable(&buf, []Result{pp, tg}))
	out = buf.String()
	require.Contains(t, out, "103.0%* of 100.0 GB/s read")
	require.Contains(t, out, footnoteRead)
	require.NotContains(t, out, footnoteFMA)
	require.Equal(t, 2, strings.Count(out, "*"), "the mark and its footnote")

	pp.FMAFraction = 1.2
	buf.Reset()
	require.NoError(t, WriteTable(&buf, []Result{pp}))
	require.Contains(t, buf.String(), "120.0%* of 1000.0 GFLOP/s fma")
	require.Contains(t, buf.String(), footnoteFMA)
}

func TestCPUMultiplyAddRate(t *testing.T) {
	r := CPUMultiplyAddRate(1)
	require.Greater(t, r, 0.0, "the probe's chains did not reach the fixed point")
	t.Logf("host multiply-add: %.2f GFLOP/s", r/1e9)
}
