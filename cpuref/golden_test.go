package cpuref

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// goldenRow is one row of the expected-logits table of spec/rwkv7.md §11
// (float64 reference; llama.cpp agreed within 5.3e-7).
type goldenRow struct {
	argmax                       int
	maxLogit, l0, l11, l74, l256 float64
	sum                          float64
}

var goldenTable = []goldenRow{
	{114, 2.386581, -0.364001, -0.606886, 0.112580, 0.289111, -30.49710},
	{11, 1.683388, -1.065951, 1.683388, -0.787851, -0.474274, 17.04044},
	{211, 2.058904, -0.016815, -0.974861, 0.688066, 0.041809, 11.26810},
	{35, 2.305765, 0.087083, 0.030279, 0.632032, 0.676101, -3.38613},
	{35, 2.515320, -0.082786, -0.631162, 1.062243, 0.305734, -13.45024},
	{52, 2.707149, 0.383835, -1.095553, 1.331417, -0.690370, -11.15907},
	{144, 2.234114, 0.183427, -0.612558, 0.424763, -0.598526, -11.14714},
	{79, 2.454605, 2.242993, -0.835773, 0.982140, 0.343432, -9.76658},
	{188, 1.985746, 1.598441, 1.328859, 0.859657, -0.308205, -19.61452},
	{163, 2.124887, -0.381562, -0.987499, -0.740008, -0.952095, -0.69298},
	{213, 2.520341, 0.236075, -0.940368, 0.550340, 0.103904, 2.57840},
	{194, 2.092365, 0.693181, 0.019320, 0.278831, -0.297920, -24.53108},
	{212, 2.368861, -1.217657, 0.625434, 0.419745, 1.429889, 3.90144},
	{170, 2.332119, 0.493250, 1.114493, -1.458097, 0.550712, -6.39191},
	{135, 2.696840, 0.824150, -0.381635, -1.346704, 0.102653, -4.95602},
	{179, 2.359163, -0.009744, 0.052063, 0.382143, -0.787084, 1.74969},
	{179, 1.993701, 0.162421, 0.381255, 0.111003, -0.159903, 6.96804},
}

// goldenStateSums: per layer Σ S, Σ|S|, Σ shift_att, Σ shift_ffn after the
// 17 tokens (§11).
var goldenStateSums = [][4]float64{
	{47.2482, 3217.747, 1.792338, -0.711386},
	{-7.62824, 2311.713, -0.683095, -0.965142},
}

func openGolden(t *testing.T) *Engine {
	t.Helper()
	path := filepath.Join(t.TempDir(), "golden.gguf")
	require.NoError(t, numtest.WriteGolden(path))
	f, err := gguf.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	w, err := model.Load(f)
	require.NoError(t, err)
	require.Equal(t, numtest.GoldenConfig, withoutName(w.Config))
	return New(w)
}

func withoutName(c model.Config) model.Config { c.Name = ""; return c }

func TestGoldenU(t *testing.T) {
	// The check values of spec/rwkv7.md §11.
	want := []float32{0.35517883, -0.26530457, 0.19841003, -0.3738861}
	for i, w := range want {
		require.InDelta(t, w, numtest.GoldenU("token_embd.weight", uint32(i)), 1e-8, "u[%d]", i)
	}
}

func TestGoldenModel(t *testing.T) {
	e := openGolden(t)
	V := e.Config().Vocab
	batchSession, err := e.NewSession()
	require.NoError(t, err)
	batch, err := model.Forward(context.Background(), e, batchSession, numtest.GoldenPrompt, model.WantAll)
	require.NoError(t, err)
	seq := numtest.SeqLogits(t, e, numtest.GoldenPrompt)
	if i := numtest.FirstMismatch(batch, seq, 0, 0); i >= 0 {
		t.Errorf("prefill differs from single steps: %s", numtest.Describe(batch, seq, i, V))
	}
	// Logits to ~2e-6 absolute (the table's values are rounded to 1e-6);
	// sums of 257 logits to 1e-4.
	const tolLogit, tolSum = 3e-6, 1e-4
	for p, row := range goldenTable {
		l := batch[p*V : (p+1)*V]
		require.Equal(t, row.argmax, model.Argmax(l), "position %d argmax", p)
		var sum float64
		for _, v := range l {
			sum += float64(v)
		}
		checks := []struct {
			name      string
			got, want float64
			tol       float64
		}{
			{"max logit", float64(l[row.argmax]), row.maxLogit, tolLogit},
			{"logit[0]", float64(l[0]), row.l0, tolLogit},
			{"logit[11]", float64(l[11]), row.l11, tolLogit},
			{"logit[74]", float64(l[74]), row.l74, tolLogit},
			{"logit[256]", float64(l[256]), row.l256, tolLogit},
			{"sum of logits", sum, row.sum, tolSum},
		}
		for _, c := range checks {
			if math.Abs(c.got-c.want) > c.tol {
				t.Errorf("position %d %s: got %.7f, want %.7f (tolerance %g)", p, c.name, c.got, c.want, c.tol)
			}
		}
	}
	st, err := batchSession.State()
	require.NoError(t, err)
	for l, want := range goldenStateSums {
		var sumS, sumAbs, sumAtt, sumFfn float64
		for _, v := range st.WKV(l) {
			sumS += float64(v)
			sumAbs += math.Abs(float64(v))
		}
		for _, v := range st.AttShift(l) {
			sumAtt += float64(v)
		}
		for _, v := range st.FfnShift(l) {
			sumFfn += float64(v)
		}
		got := [4]float64{sumS, sumAbs, sumAtt, sumFfn}
		names := []string{"Σ S", "Σ|S|", "Σ shift_att", "Σ shift_ffn"}
		for i := range got {
			// 1e-5 relative to Σ|S| of the layer for the signed sums (their
			// cancellation makes a relative bound on the sum itself
			// meaningless), and the table's 6-7 significant digits.
			tol := math.Max(1e-5*math.Abs(want[i]), 1e-6)
			if i == 0 {
				tol = 1e-5 * want[1]
			}
			if math.Abs(got[i]-want[i]) > tol {
				t.Errorf("layer %d %s: got %.7f, want %.7f (tolerance %.2g)", l, names[i], got[i], want[i], tol)
			}
		}
	}
}
