package cpuref

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// fixtureTypes are the 13 tiny fixture files, with the relative L2 distance
// between llama.cpp's seq logits and the ideal logits from the fixtures
// README ("llama.cpp seq vs ideal"). An engine that matches the ideal
// logits sits at that distance from llama.cpp.
var fixtureTypes = []struct {
	name        string
	llamaVsIdea float64
}{
	{"F32", 3.19e-07}, {"F16", 4.71e-04}, {"BF16", 3.43e-03}, {"Q8_0", 1.19e-02},
	{"Q6_K", 1.71e-02}, {"Q5_K_M", 2.63e-02}, {"Q5_1", 1.28e-02}, {"Q5_0", 1.31e-02},
	{"Q4_K_M", 1.81e-02}, {"Q4_1", 1.31e-02}, {"Q4_0", 1.28e-02}, {"Q3_K_M", 1.75e-02},
	{"Q2_K", 1.76e-02},
}

// Tolerances against the ideal (float64) logits: a float32 forward pass of
// the F32 file lands at about 3e-7; 1e-5 leaves room for the accumulated
// float32 rounding of 3 layers and 48 tokens, and nothing more.
const idealRelL2 = 1e-5

func TestFixtureLogits(t *testing.T) {
	ids := numtest.FixturePrompt(t)
	for _, ft := range fixtureTypes {
		t.Run(ft.name, func(t *testing.T) {
			if testing.Short() && ft.name != "F32" && ft.name != "Q4_K_M" {
				t.Skip("short mode: only F32 and Q4_K_M")
			}
			t.Parallel()
			e := New(numtest.LoadFixture(t, ft.name))
			V := e.Config().Vocab
			dir := fixtures.Path(t, "tiny", "logits")
			ideal, err := numtest.ReadF32(filepath.Join(dir, "rwkv7-tiny-"+ft.name+".ideal.f32"))
			require.NoError(t, err)
			llamaSeq, err := numtest.ReadF32(filepath.Join(dir, "rwkv7-tiny-"+ft.name+".seq.f32"))
			require.NoError(t, err)

			seq := numtest.SeqLogits(t, e, ids)
			batch := numtest.BatchLogits(t, e, ids)
			sSeq := numtest.CheckLogits(t, "seq vs ideal", seq, ideal, V, idealRelL2)
			sBatch := numtest.CheckLogits(t, "batch vs ideal", batch, ideal, V, idealRelL2)
			// Batch equals seq to float32 rounding: here bit for bit, since
			// both run the same per-row arithmetic.
			if i := numtest.FirstMismatch(batch, seq, 0, 0); i >= 0 {
				t.Errorf("batch differs from seq: %s", numtest.Describe(batch, seq, i, V))
			}
			// Against llama.cpp: F32 to 1e-5; others about as far as the
			// ideal logits are (10% margin).
			tolLlama := 1e-5
			if ft.name != "F32" {
				tolLlama = ft.llamaVsIdea * 1.1
			}
			sLlama := numtest.Compare(seq, llamaSeq)
			if sLlama.RelL2 > tolLlama {
				i := numtest.FirstMismatch(seq, llamaSeq, 0, tolLlama)
				t.Errorf("seq vs llama.cpp seq: relative L2 error %.3g > %.3g; first mismatch %s", sLlama.RelL2, tolLlama, numtest.Describe(seq, llamaSeq, max(i, 0), V))
			}
			t.Logf("%-7s rel L2 vs ideal: seq %.2e batch %.2e (max abs %.2e); vs llama.cpp seq %.2e (max abs %.3g)",
				ft.name, sSeq.RelL2, sBatch.RelL2, sSeq.MaxAbs, sLlama.RelL2, sLlama.MaxAbs)
		})
	}
}

// TestStateSaveRestore checks that 24 tokens, a save to bytes, a restore into
// a fresh session and 24 more tokens equal 48 tokens straight.
func TestStateSaveRestore(t *testing.T) {
	ids := numtest.FixturePrompt(t)
	e := New(numtest.LoadFixture(t, "Q8_0"))
	c := e.Config()
	straight := numtest.BatchLogits(t, e, ids)

	s1, err := e.NewSession()
	require.NoError(t, err)
	_, err = model.Forward(context.Background(), e, s1, ids[:24], model.WantNothing)
	require.NoError(t, err)
	st, err := s1.State()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "state.bin")
	require.NoError(t, model.SaveState(path, st))
	loaded, err := model.LoadState(path, c)
	require.NoError(t, err)
	require.Equal(t, st.Data, loaded.Data)

	s2, err := e.NewSession()
	require.NoError(t, err)
	require.NoError(t, s2.SetState(loaded))
	rest, err := model.Forward(context.Background(), e, s2, ids[24:], model.WantAll)
	require.NoError(t, err)
	want := straight[24*c.Vocab:]
	if i := numtest.FirstMismatch(rest, want, 0, 0); i >= 0 {
		t.Fatalf("restored run differs: %s", numtest.Describe(rest, want, i, c.Vocab))
	}
}
