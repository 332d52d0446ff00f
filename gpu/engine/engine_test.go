package engine

import (
	"context"
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
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

func newTestEngine(t *testing.T, d *gpu.Device, w *model.Weights, opt Options) *Engine {
	t.Helper()
	e, err := New(d, w, opt)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// gpuFixtureTypes are the fixture files whose every tensor the GPU reads.
var gpuFixtureTypes = []string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"}

func TestFixtureLogitsGPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)
	for _, typ := range gpuFixtureTypes {
		t.Run(typ, func(t *testing.T) {
			w := numtest.LoadFixture(t, typ)
			ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-"+typ+".ideal.f32"))
			require.NoError(t, err)
			// MaxTokens 16 splits the 48-token prefill into three steps.
			e := newTestEngine(t, d, w, Options{MaxTokens: 16})
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
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "F16")
	e := newTestEngine(t, d, w, Options{MaxTokens: 32, StateSlots: 2})
	s, err := e.NewSession()
	require.NoError(t, err)
	ctx := context.Background()
	_, err = model.Forward(ctx, e, s, ids, model.WantNothing)
	require.NoError(t, err)
	got, err := s.State()
	require.NoError(t, err)

	c := cpuref.New(w)
	cs, err := c.NewSession()
	require.NoError(t, err)
	_, err = model.Forward(ctx, c, cs, ids, model.WantNothing)
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
	_, err = model.Forward(ctx, e, s, ids[:24], model.WantNothing)
	require.NoError(t, err)
	half, err := s.State()
	require.NoError(t, err)
	require.NoError(t, s.Reset())
	zero, err := s.State()
	require.NoError(t, err)
	require.Equal(t, model.NewState(w.Config).Data, zero.Data, "Reset must zero the state")
	require.NoError(t, s.SetState(half))
	rest, err := model.Forward(ctx, e, s, ids[24:], model.WantAll)
	require.NoError(t, err)
	V := w.Config.Vocab
	if i := numtest.FirstMismatch(rest, straight[24*V:], 0, 0); i >= 0 {
		t.Fatalf("restored run differs: %s", numtest.Describe(rest, straight[24*V:], i, V))
	}
	// Two slots: a third session is refused.
	_, err = e.NewSession()
	require.NoError(t, err)
	_, err = e.NewSession()
	require.ErrorIs(t, err, model.ErrNoSlot)
}

// TestGreedyOnGPU chains WantToken steps with Continue (the chosen token
// never leaves the device before it is fed) and, read one step behind,
// checks the tokens against cpuref's greedy continuation.
func TestGreedyOnGPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "F32")
	e := newTestEngine(t, d, w, Options{})
	ctx := context.Background()
	// Reference: cpuref's greedy continuation.
	c := cpuref.New(w)
	cs, err := c.NewSession()
	require.NoError(t, err)
	logits, err := model.Forward(ctx, c, cs, ids, model.WantLast)
	require.NoError(t, err)
	var want []int
	for i := 0; i < 12; i++ {
		next := model.Argmax(logits)
		want = append(want, next)
		logits, err = model.Forward(ctx, c, cs, []int{next}, model.WantLast)
		require.NoError(t, err)
	}
	s, err := e.NewSession()
	require.NoError(t, err)
	p, err := e.Submit(ctx, []model.Seq{{Session: s, Tokens: ids, Want: model.WantToken}})
	require.NoError(t, err)
	var got []int
	for i := 1; i <= 12; i++ {
		var next model.Pending
		if i < 12 {
			next, err = e.Submit(ctx, []model.Seq{{Session: s, Continue: true, Want: model.WantToken}})
			require.NoError(t, err)
		}
		r, err := p.Wait()
		require.NoError(t, err)
		got = append(got, r[0].Token)
		p = next
	}
	require.Equal(t, want, got)
}

func TestSplitArenas(t *testing.T) {
	// An arena cap far below every matrix forces row splits everywhere
	// (embedding, head, every stage): results must not change.
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)[:20]
	w := numtest.LoadFixture(t, "Q8_0")
	whole := newTestEngine(t, d, w, Options{})
	split := newTestEngine(t, d, w, Options{ArenaBytes: 48 << 10})
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
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "Q8_0")
	w.Head.Type = gguf.Q8_1
	_, err := New(d, w, Options{})
	require.ErrorIs(t, err, ErrUnsupportedOnGPU)
	require.ErrorContains(t, err, "tensor output.weight has type Q8_1, which is not yet supported on the GPU")
}

// TestMatvecShapes runs the decode kernel with every team size (the choice
// differs between devices: lavapipe uses 4 lanes per row, GPUs 8 to 64) on
// a fixture and checks each against the ideal logits.
func TestMatvecShapes(t *testing.T) {
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)[:12]
	w := numtest.LoadFixture(t, "Q4_K_M")
	ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-Q4_K_M.ideal.f32"))
	require.NoError(t, err)
	V := w.Config.Vocab
	for _, lanes := range []int{4, 8, 64, 256} {
		e := newTestEngine(t, d, w, Options{MatvecLanes: lanes})
		numtest.CheckLogits(t, fmt.Sprintf("seq, %d lanes per row", lanes), numtest.SeqLogits(t, e, ids), ideal[:len(ids)*V], V, gpuIdealTol)
		require.NoError(t, e.Close())
	}
	_, err = New(d, w, Options{MatvecLanes: 12})
	require.ErrorContains(t, err, "MatvecLanes 12")
}

func TestEngineSizeLimits(t *testing.T) {
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "Q8_0")
	// The activation limit is reached with huge passes, the state slots'
	// with more slots than one binding holds.
	_, err := New(d, w, Options{MaxTokens: 1 << 20})
	require.ErrorContains(t, err, "lower MaxTokens")
	per := uint64(w.Config.StateBytes())
	fit := int((d.MaxBindingSize() &^ 255) / per)
	_, err = New(d, w, Options{StateSlots: fit + 1})
	require.ErrorContains(t, err, fmt.Sprintf("ask for at most %d slots", fit))
	e := newTestEngine(t, d, w, Options{StateMemory: 10 * (per + samplerSlotBytes(w.Config.Vocab))})
	require.Equal(t, 10, e.StateSlots(), "slots from the state memory budget")
}

// TestSplitLoRAUps checks the alternative layout in which the LoRA up
// projections are a grouped product before the WKV kernel.
func TestSplitLoRAUps(t *testing.T) {
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)
	for _, typ := range []string{"F16", "Q4_K_M"} {
		w := numtest.LoadFixture(t, typ)
		ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-"+typ+".ideal.f32"))
		require.NoError(t, err)
		e := newTestEngine(t, d, w, Options{SplitLoRAUps: true, MaxTokens: 16})
		require.Equal(t, 8, e.DispatchesPerLayer())
		V := w.Config.Vocab
		numtest.CheckLogits(t, typ+" seq, split LoRA ups", numtest.SeqLogits(t, e, ids), ideal, V, gpuIdealTol)
		numtest.CheckLogits(t, typ+" batch, split LoRA ups", numtest.BatchLogits(t, e, ids), ideal, V, gpuIdealTol)
	}
}

// TestSmallWorkgroupMemory runs the prefill with the 32-token tiles used on
// devices that offer only WebGPU's guaranteed 16 KiB of workgroup memory.
func TestSmallWorkgroupMemory(t *testing.T) {
	d := gputest.OpenDevice(t)
	ids := numtest.FixturePrompt(t)
	w := numtest.LoadFixture(t, "Q6_K")
	ideal, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "logits"), "rwkv7-tiny-Q6_K.ideal.f32"))
	require.NoError(t, err)
	e := newTestEngine(t, d, w, Options{WorkgroupMemory: 16 << 10})
	tt, wg := e.matmulShape()
	require.Equal(t, []int{32, 128}, []int{tt, wg})
	numtest.CheckLogits(t, "batch with 32-token tiles", numtest.BatchLogits(t, e, ids), ideal, w.Config.Vocab, gpuIdealTol)
}

// TestStepMixedSequences runs 1, 3 and 9 sequences with ragged prompts
// through steps that mix prefill and decode, with sequences joining and
// leaving, passes of 16 tokens (so steps split into passes) and every
// Want, and compares each sequence with cpuref run alone.
func TestStepMixedSequences(t *testing.T) {
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "Q8_0")
	base := numtest.FixturePrompt(t)
	for _, n := range []int{1, 3, 9} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newTestEngine(t, d, w, Options{MaxTokens: 16, StateSlots: 9})
			numtest.CheckMixedSteps(t, e, cpuref.New(w), numtest.Prompts(base, n), gpuIdealTol)
		})
	}
}

func TestStepFork(t *testing.T) {
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "F16")
	e := newTestEngine(t, d, w, Options{MaxTokens: 16, StateSlots: 2})
	numtest.CheckFork(t, e, cpuref.New(w), numtest.FixturePrompt(t)[:20], gpuIdealTol)
}

func TestStepCancelBetweenPasses(t *testing.T) {
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "F16")
	e := newTestEngine(t, d, w, Options{MaxTokens: 16, StateSlots: 1})
	numtest.CheckCancel(t, e, cpuref.New(w), numtest.FixturePrompt(t), gpuIdealTol)
}

// TestStepConcurrentCallers steps one engine from several goroutines at
// once (each its own session, with pipelined Submit/Wait): every sequence
// equals cpuref run alone.
func TestStepConcurrentCallers(t *testing.T) {
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "Q8_0")
	e := newTestEngine(t, d, w, Options{MaxTokens: 16, StateSlots: 6})
	numtest.CheckConcurrent(t, e, cpuref.New(w), numtest.Prompts(numtest.FixturePrompt(t), 6), gpuIdealTol)
}

// TestSampledDecodeMatchesCPU decodes with RWKV's sampler (the chat and
// creative presets, fixed seeds) on the GPU, chained on the device, and on
// the CPU reference: the tokens must be the same, except that a draw that
// falls within 1e-4 of a cumulative boundary of the CPU's distribution may
// part them (the GPU's logits differ from the CPU's by ~1e-6), after which
// the comparison stops. A fork inherits the sampler and draws the same.
func TestSampledDecodeMatchesCPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	w := numtest.LoadFixture(t, "F16")
	prompt := numtest.FixturePrompt(t)[:16]
	e := newTestEngine(t, d, w, Options{MaxTokens: 16, StateSlots: 3})
	c := cpuref.New(w)
	ctx := context.Background()
	for _, preset := range []string{"chat", "creative"} {
		t.Run(preset, func(t *testing.T) {
			p, err := model.Preset(preset)
			require.NoError(t, err)
			p.Seed = 42
			gs, err := e.NewSession()
			require.NoError(t, err)
			defer gs.Close()
			require.NoError(t, gs.SetSampling(&p))
			// The CPU side: logits from cpuref, the reference sampler drawn
			// by hand, so that each draw's distance to a boundary is known.
			cs, err := c.NewSession()
			require.NoError(t, err)
			st, err := cpuref.NewSamplerState(p, w.Config.Vocab)
			require.NoError(t, err)
			logits, err := model.Forward(ctx, c, cs, prompt, model.WantLast)
			require.NoError(t, err)
			seq := model.Seq{Session: gs, Tokens: prompt, Want: model.WantToken}
			var fork model.Session
			for step := 0; step < 24; step++ {
				q, err := st.Distribution(logits)
				require.NoError(t, err)
				u := model.SampleUniform(p.Seed, st.Counter)
				near := cpuref.BoundaryDistance(q, u) < 1e-4
				want, err := st.Sample(logits)
				require.NoError(t, err)
				r, err := e.Step(ctx, []model.Seq{seq})
				require.NoError(t, err)
				if near && r[0].Token != want {
					t.Logf("step %d: the draw fell within 1e-4 of a boundary and the GPU chose %d, the CPU %d: stopping", step, r[0].Token, want)
					return
				}
				require.Equal(t, want, r[0].Token, "step %d", step)
				if step == 5 {
					fork, err = gs.Fork()
					require.NoError(t, err)
					defer fork.Close()
				}
				if step == 6 {
					// The fork continues from the same state and sampler.
					fr, err := e.Step(ctx, []model.Seq{{Session: fork, Continue: true, Want: model.WantToken}})
					require.NoError(t, err)
					require.Equal(t, r[0].Token, fr[0].Token, "the fork draws what its parent drew")
				}
				seq = model.Seq{Session: gs, Continue: true, Want: model.WantToken}
				if logits, err = model.Forward(ctx, c, cs, []int{want}, model.WantLast); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
