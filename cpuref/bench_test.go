package cpuref

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/synth"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// benchmarkDecode times one single-token decode step of the model in path
// (b.N steps from a state that has seen a few tokens). Report tokens/s as
// 1e9/ns-per-op.
func benchmarkDecode(b *testing.B, path string) {
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := model.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	e := New(w)
	s, err := e.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := model.Forward(context.Background(), e, s, []int{1, 2, 3}, model.WantNothing); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := model.Forward(context.Background(), e, s, []int{(i * 7) % w.Config.Vocab}, model.WantLast); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecodeTiny: the tiny fixture shape (L3 D256), Q8_0.
func BenchmarkDecodeTiny(b *testing.B) {
	benchmarkDecode(b, synthModel(b, "tiny", gguf.Q8_0))
}

// BenchmarkDecode01B: the published 0.1B shape (L12 D768 V65536), Q8_0.
func BenchmarkDecode01B(b *testing.B) {
	benchmarkDecode(b, synthModel(b, "0.1b", gguf.Q8_0))
}

// BenchmarkDecode01BF16: the 0.1B shape at F16.
func BenchmarkDecode01BF16(b *testing.B) {
	benchmarkDecode(b, synthModel(b, "0.1b", gguf.F16))
}

// synthModel writes (once per cache folder) a synthetic model of a preset.
func synthModel(b *testing.B, preset string, t gguf.Type) string {
	b.Helper()
	p, err := synth.PresetByName(preset)
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "synth")
	path, err := synth.Ensure(dir, synth.Options{Preset: p, Type: t, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	return path
}
