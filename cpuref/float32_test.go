package cpuref

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
)

// TestDot32SumsInFloat32: 1e8 + 1 rounds to 1e8 in float32 (its spacing
// there is 8), so the float32 sum of (1e8, 1, −1e8) is 0 where the float64
// sum is 1.
func TestDot32SumsInFloat32(t *testing.T) {
	a := []float32{1e8, 1, -1e8}
	ones := []float32{1, 1, 1}
	require.Equal(t, float32(0), dot32(a, ones))
	require.Equal(t, 1.0, Dot(a, ones))
	// 3 + 4·2 + … exact small sums agree: Σ i·(i+1) for i < 10 = 330.
	x, y := make([]float32, 10), make([]float32, 10)
	for i := range x {
		x[i], y[i] = float32(i), float32(i+1)
	}
	require.Equal(t, float32(330), dot32(x, y))
}

// TestFloat32TwinFixtures: the float32 twin computes the same model (the
// fixtures' ideal logits, within float32 noise of three layers: 1e-5, as for
// the reference) but not with the reference's arithmetic (it must differ from
// Forward, or it measures nothing).
func TestFloat32TwinFixtures(t *testing.T) {
	ids := numtest.FixturePrompt(t)
	for _, name := range []string{"F32", "Q4_K_M", "Q5_K_M"} {
		t.Run(name, func(t *testing.T) {
			w := numtest.LoadFixture(t, name)
			V := w.Config.Vocab
			ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-"+name+".ideal.f32"))
			require.NoError(t, err)
			got, err := Float32Logits(w, ids)
			require.NoError(t, err)
			s := numtest.CheckLogits(t, "float32 twin vs ideal", got, ideal, V, idealRelL2)
			ref := numtest.BatchLogits(t, New(w), ids)
			d := numtest.Compare(got, ref)
			t.Logf("%s: float32 twin vs ideal %.2e, vs Forward %.2e", name, s.RelL2, d.RelL2)
			require.Greater(t, d.RelL2, 1e-9, "the float32 twin gives the reference's logits: it does not sum in float32")
		})
	}
}

func TestFloat32TwinRejectsBadTokens(t *testing.T) {
	w := numtest.LoadFixture(t, "F32")
	_, err := Float32Logits(w, []int{0, w.Config.Vocab})
	require.ErrorContains(t, err, "position 1")
	_, err = Float32Logits(w, nil)
	require.Error(t, err)
}
