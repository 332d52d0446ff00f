package synth

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// testIDs is a fixed pseudo-random id sequence below vocab, starting with <s>.
func testIDs(n, vocab int) []int {
	ids := make([]int, n)
	x := uint32(12345)
	for i := 1; i < n; i++ {
		x = x*1664525 + 1013904223
		ids[i] = int(x>>8) % vocab
	}
	return ids
}

// checkLogits requires finite logits whose per-position standard deviation
// lies in [0.5, 20] (the fixture model's is about 2.48), and returns the
// number of distinct argmaxes.
func checkLogits(t *testing.T, logits []float32, vocab int) int {
	t.Helper()
	require.Zero(t, len(logits)%vocab)
	argmaxes := map[int]bool{}
	for p := 0; p < len(logits)/vocab; p++ {
		row := logits[p*vocab : (p+1)*vocab]
		var sum, sq float64
		for i, v := range row {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "position %d logit %d = %v", p, i, v)
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / float64(vocab)
		std := math.Sqrt(sq/float64(vocab) - mean*mean)
		require.True(t, std >= 0.5 && std <= 20, "position %d: logit std %.3g outside [0.5, 20]", p, std)
		argmaxes[model.Argmax(row)] = true
	}
	return len(argmaxes)
}

// checkState requires a finite state with WKV values below 100 in magnitude
// (the fixture model's stay below 8 over 256 tokens) and not all zero.
func checkState(t *testing.T, s model.Session, c model.Config) {
	t.Helper()
	st, err := s.State()
	require.NoError(t, err)
	for l := 0; l < c.Layers; l++ {
		var maxAbs float64
		for _, v := range st.WKV(l) {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "layer %d: WKV state %v", l, v)
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		require.True(t, maxAbs > 0.1 && maxAbs < 100, "layer %d: max |WKV state| = %.3g", l, maxAbs)
		for _, v := range append(st.AttShift(l), st.FfnShift(l)...) {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "layer %d: shift %v", l, v)
		}
	}
}

func runModel(t *testing.T, path string, ids []int) (model.Session, model.Config, []float32) {
	t.Helper()
	f := openGGUF(t, path)
	w, err := model.Load(f)
	require.NoError(t, err)
	e := cpuref.New(w)
	s, err := e.NewSession()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	logits, err := model.Forward(context.Background(), e, s, ids, model.WantAll)
	require.NoError(t, err)
	require.Len(t, logits, len(ids)*w.Config.Vocab)
	return s, w.Config, logits
}

func TestTinyNumerics(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.F32, gguf.Q8_0, gguf.Q4_K} {
		t.Run(typ.String(), func(t *testing.T) {
			s, c, logits := runModel(t, writeTiny(t, typ, 1), testIDs(128, 1024))
			distinct := checkLogits(t, logits, c.Vocab)
			require.Greater(t, distinct, 32, "argmax over 128 positions")
			checkState(t, s, c)
		})
	}
}

func TestPreset01bQ8_0(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 212 MB model")
	}
	p, err := PresetByName("0.1b")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "0.1b.gguf")
	require.NoError(t, Write(path, Options{Preset: p, Type: gguf.Q8_0, Seed: 1}))
	s, c, logits := runModel(t, path, testIDs(6, WorldVocabSize))
	require.Equal(t, p.Config, c)
	require.Greater(t, checkLogits(t, logits, c.Vocab), 3)
	checkState(t, s, c)

	f := openGGUF(t, path)
	tok, err := model.LoadTokenizer(f)
	require.NoError(t, err)
	require.Equal(t, WorldVocabSize, tok.VocabSize())
}
