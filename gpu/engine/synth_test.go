package engine

import (
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/internal/synth"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// TestSynthModelsGPUvsCPU: files written by the synthetic generator (the
// `rwkv synth` path; F16 LoRA matrices beside quantized main matrices and a
// Q6_K head, as in published files) run on the GPU as on the CPU reference.
func TestSynthModelsGPUvsCPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	preset, err := synth.PresetByName("tiny")
	require.NoError(t, err)
	ids := []int{0, 5, 300, 77, 1023, 2, 261, 261, 40, 900, 11, 33, 512, 64, 128, 1}
	for _, typ := range []gguf.Type{gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_K, gguf.Q6_K, gguf.Q3_K} {
		t.Run(typ.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "synth.gguf")
			require.NoError(t, synth.Write(path, synth.Options{Preset: preset, Type: typ, Seed: 3}))
			f, err := gguf.Open(path)
			require.NoError(t, err)
			defer f.Close()
			w, err := model.Load(f)
			require.NoError(t, err)
			want := numtest.BatchLogits(t, cpuref.New(w), ids)
			e := newTestEngine(t, d, w, Options{})
			numtest.CheckLogits(t, "GPU batch vs cpuref", numtest.BatchLogits(t, e, ids), want, w.Config.Vocab, gpuIdealTol)
			numtest.CheckLogits(t, "GPU seq vs cpuref", numtest.SeqLogits(t, e, ids), want, w.Config.Vocab, gpuIdealTol)
		})
	}
}

// TestPublishedShapeGPUvsCPU runs the published 0.1B shape (L12, D768, the
// full 65536-token vocabulary, 12 heads) on the GPU and the CPU reference:
// the shapes of real files (a 65536-row head, long embedding table) that the
// tiny fixtures do not reach.
func TestPublishedShapeGPUvsCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 200 MB model")
	}
	d := gputest.OpenDevice(t)
	preset, err := synth.PresetByName("0.1b")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "synth-0.1b.gguf")
	require.NoError(t, synth.Write(path, synth.Options{Preset: preset, Type: gguf.Q8_0, Seed: 5}))
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	w, err := model.Load(f)
	require.NoError(t, err)
	ids := []int{0, 65535, 24281, 59, 261}
	want := numtest.BatchLogits(t, cpuref.New(w), ids)
	e := newTestEngine(t, d, w, Options{})
	numtest.CheckLogits(t, "0.1B shape, GPU batch vs cpuref", numtest.BatchLogits(t, e, ids), want, w.Config.Vocab, gpuIdealTol)
}
