package gpu

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// gpuIdealTol is the relative L2 error allowed against the ideal (float64)
// logits: the GPU accumulates in float32 without float64 help, in other
// orders than cpuref; 1e-4 is the bound, about 100 times what we
// measure (see TestFixtureLogitsGPU's log).
const gpuIdealTol = 1e-4

func newTestEngine(t *testing.T, d *Device, w *model.Weights, opt EngineOptions) *Engine {
	t.Helper()
	e, err := NewEngine(d, w, opt)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// gpuFixtureTypes are the fixture files whose every tensor the GPU reads.
var gpuFixtureTypes = []string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"}

func TestFixtureLogitsGPU(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)
	for _, typ := range gpuFixtureTypes {
		t.Run(typ, func(t *testing.T) {
			w := numtest.LoadFixture(t, typ)
			ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-"+typ+".ideal.f32"))
			require.NoError(t, err)
			// MaxTokens 16 splits the 48-token prefill into three steps.
			e := newTestEngine(t, d, w, EngineOptions{MaxTokens: 16})
			V := w.Config.Vocab
			seq := numtest.SeqLogits(t, e, ids)
			batch := numtest.BatchLogits(t, e, ids)
			s1 := numtest.CheckLogits(t, "seq vs ideal", seq, ideal, V, gpuIdealTol)
			s2 := numtest.CheckLogits(t, "batch vs ideal", batch, ideal, V, gpuIdealTol)
			t.Logf("%s: rel L2 vs ideal seq %.2e (max abs %.2e), batch %.2e (max abs %.2e); %d dispatches per token, %d per layer",
				typ, s1.RelL2, s1.MaxAbs, s2.RelL2, s2.MaxAbs, e.DispatchesPerToken(), e.DispatchesPerLayer())
		})
	}
}

func TestGPUStateMatchesCPU(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "F16")
	e := newTestEngine(t, d, w, EngineOptions{MaxTokens: 32, MaxSequences: 2})
	s, err := e.NewSession()
	require.NoError(t, err)
	_, err = s.Forward(ids, model.OutputNone)
	require.NoError(t, err)
	got, err := s.State()
	require.NoError(t, err)

	c := cpuref.New(w)
	cs, err := c.NewSession()
	require.NoError(t, err)
	_, err = cs.Forward(ids, model.OutputNone)
	require.NoError(t, err)
	want, err := cs.State()
	require.NoError(t, err)
	st := numtest.Compare(got.Data, want.Data)
	require.Less(t, st.RelL2, 1e-4, "GPU state after 48 tokens vs cpuref: %+v; first mismatch %d", st, numtest.FirstMismatch(got.Data, want.Data, 1e-6, 1e-3))
	t.Logf("state rel L2 %.2e, max abs %.2e", st.RelL2, st.MaxAbs)

	// Save/restore through the GPU: 24 tokens, state out, the session
	// reset and restored from it, 24 more tokens == 48 straight.
	straight := numtest.BatchLogits(t, e, ids)
	require.NoError(t, s.Reset())
	_, err = s.Forward(ids[:24], model.OutputNone)
	require.NoError(t, err)
	half, err := s.State()
	require.NoError(t, err)
	require.NoError(t, s.Reset())
	zero, err := s.State()
	require.NoError(t, err)
	require.Equal(t, model.NewState(w.Config).Data, zero.Data, "Reset must zero the state")
	require.NoError(t, s.SetState(half))
	rest, err := s.Forward(ids[24:], model.OutputAll)
	require.NoError(t, err)
	V := w.Config.Vocab
	if i := numtest.FirstMismatch(rest, straight[24*V:], 0, 0); i >= 0 {
		t.Fatalf("restored run differs: %s", numtest.Describe(rest, straight[24*V:], i, V))
	}
	// Two slots: a third session is refused.
	_, err = e.NewSession()
	require.NoError(t, err)
	_, err = e.NewSession()
	require.ErrorIs(t, err, ErrNoSlot)
}

func TestGreedyOnGPU(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "F32")
	e := newTestEngine(t, d, w, EngineOptions{})
	// Reference: cpuref's greedy continuation.
	c := cpuref.New(w)
	cs, err := c.NewSession()
	require.NoError(t, err)
	logits, err := cs.Forward(ids, model.OutputLast)
	require.NoError(t, err)
	var want []int
	for i := 0; i < 12; i++ {
		next := model.Argmax(logits)
		want = append(want, next)
		logits, err = cs.Forward([]int{next}, model.OutputLast)
		require.NoError(t, err)
	}
	s, err := e.NewSession()
	require.NoError(t, err)
	first, err := s.(*Session).ForwardArgmax(ids)
	require.NoError(t, err)
	require.Equal(t, want[0], first)
	rest, err := s.(*Session).Greedy(first, 11)
	require.NoError(t, err)
	require.Equal(t, want[1:], rest)
}

func TestSplitArenas(t *testing.T) {
	// An arena cap far below every matrix forces row splits everywhere
	// (embedding, head, every stage): results must not change.
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)[:20]
	w := numtest.LoadFixture(t, "Q8_0")
	whole := newTestEngine(t, d, w, EngineOptions{})
	split := newTestEngine(t, d, w, EngineOptions{ArenaBytes: 48 << 10})
	require.Greater(t, len(split.head.parts), 1, "head must be split")
	require.Greater(t, len(split.embed), 1, "embedding must be split")
	a := numtest.BatchLogits(t, whole, ids)
	b := numtest.BatchLogits(t, split, ids)
	if i := numtest.FirstMismatch(b, a, 1e-6, 1e-5); i >= 0 {
		t.Fatalf("split arenas change the logits: %s", numtest.Describe(b, a, i, w.Config.Vocab))
	}
}

func TestUnsupportedTypeOnGPU(t *testing.T) {
	// Every type model.Load accepts is now read by the GPU, and a file with
	// another type (Q8_1, say) is refused by model.Load already, so the
	// GPU's own check is reached by changing a loaded matrix's type in
	// memory: Q8_1, an activation format, is not a weight format.
	d := OpenTestDevice(t)
	w := numtest.LoadFixture(t, "Q8_0")
	w.Head.Type = gguf.Q8_1
	_, err := NewEngine(d, w, EngineOptions{})
	require.ErrorIs(t, err, ErrUnsupportedOnGPU)
	require.ErrorContains(t, err, "tensor output.weight has type Q8_1, which is not yet supported on the GPU")
}

// TestMatvecShapes runs the decode kernel with every team size (the choice
// differs between devices: lavapipe uses 4 lanes per row, GPUs 8 to 64) on
// a fixture and checks each against the ideal logits.
func TestMatvecShapes(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)[:12]
	w := numtest.LoadFixture(t, "Q4_K_M")
	ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-Q4_K_M.ideal.f32"))
	require.NoError(t, err)
	V := w.Config.Vocab
	for _, lanes := range []int{4, 8, 64, 256} {
		e := newTestEngine(t, d, w, EngineOptions{MatvecLanes: lanes})
		numtest.CheckLogits(t, fmt.Sprintf("seq, %d lanes per row", lanes), numtest.SeqLogits(t, e, ids), ideal[:len(ids)*V], V, gpuIdealTol)
		require.NoError(t, e.Close())
	}
	_, err = NewEngine(d, w, EngineOptions{MatvecLanes: 12})
	require.ErrorContains(t, err, "MatvecLanes 12")
}

func TestEngineSizeLimits(t *testing.T) {
	d := OpenTestDevice(t)
	w := numtest.LoadFixture(t, "Q8_0")
	// 64 sequences fit; the activation limit is reached with huge steps.
	_, err := NewEngine(d, w, EngineOptions{MaxTokens: 1 << 20})
	require.ErrorContains(t, err, "lower MaxTokens")
	_, err = NewEngine(d, w, EngineOptions{MaxSequences: 65})
	require.ErrorContains(t, err, "at most 64 sequences")
}

// TestSplitLoRAUps checks the alternative layout in which the LoRA up
// projections are a grouped product before the WKV kernel.
func TestSplitLoRAUps(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)
	for _, typ := range []string{"F16", "Q4_K_M"} {
		w := numtest.LoadFixture(t, typ)
		ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-"+typ+".ideal.f32"))
		require.NoError(t, err)
		e := newTestEngine(t, d, w, EngineOptions{SplitLoRAUps: true, MaxTokens: 16})
		require.Equal(t, 8, e.DispatchesPerLayer())
		V := w.Config.Vocab
		numtest.CheckLogits(t, typ+" seq, split LoRA ups", numtest.SeqLogits(t, e, ids), ideal, V, gpuIdealTol)
		numtest.CheckLogits(t, typ+" batch, split LoRA ups", numtest.BatchLogits(t, e, ids), ideal, V, gpuIdealTol)
	}
}

// TestSmallWorkgroupMemory runs the prefill with the 32-token tiles used on
// devices that offer only WebGPU's guaranteed 16 KiB of workgroup memory.
func TestSmallWorkgroupMemory(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "Q6_K")
	ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-Q6_K.ideal.f32"))
	require.NoError(t, err)
	e := newTestEngine(t, d, w, EngineOptions{WorkgroupMemory: 16 << 10})
	tt, wg := e.matmulShape()
	require.Equal(t, []int{32, 128}, []int{tt, wg})
	numtest.CheckLogits(t, "batch with 32-token tiles", numtest.BatchLogits(t, e, ids), ideal, w.Config.Vocab, gpuIdealTol)
}

// TestGreedyBatchMatchesSingle: several sequences decoded together (5: the
// matvec path; 12: the tiled matmul path) choose the same tokens as each
// decoded alone, from different prompts.
func TestGreedyBatchMatchesSingle(t *testing.T) {
	d := OpenTestDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "Q8_0")
	for _, B := range []int{5, 12} {
		e := newTestEngine(t, d, w, EngineOptions{MaxSequences: B + 1, MaxTokens: 16})
		const steps = 4
		var sessions []*Session
		var first, want []int
		for i := 0; i < B; i++ {
			s, err := e.NewSession()
			require.NoError(t, err)
			prompt := ids[i*3 : i*3+5]
			_, err = s.(*Session).ForwardArgmax(prompt[:4])
			require.NoError(t, err)
			sessions = append(sessions, s.(*Session))
			first = append(first, prompt[4])
			// Reference: the same state, decoded alone in a spare slot.
			alone, err := e.NewSession()
			require.NoError(t, err)
			st, err := s.State()
			require.NoError(t, err)
			require.NoError(t, alone.SetState(st))
			got, err := alone.(*Session).Greedy(prompt[4], steps)
			require.NoError(t, err)
			want = append(want, got[steps-1])
			require.NoError(t, alone.Close())
		}
		got, err := e.GreedyBatch(sessions, first, steps)
		require.NoError(t, err)
		require.Equal(t, want, got, "batch of %d", B)
		require.NoError(t, e.Close())
	}
}
