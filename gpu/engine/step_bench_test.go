package engine

import (
	"context"
	"os"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// The host's cost of decode steps. BenchmarkHostCostModel is the figure
// `rwkv bench --profile` reports (record and encode without running the
// steps); the others run the steps, so on a CPU driver (lavapipe) their
// figures include its competition for the same cores and caches.

// benchSession opens an engine over w with one slot and a session in it.
func benchSession(b *testing.B, w *model.Weights) (*Engine, model.Session) {
	b.Helper()
	e, err := New(gputest.OpenDevice(b), w, Options{StateSlots: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	s, err := e.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	return e, s
}

// reportHost reports the engine's host cost per dispatch since the last
// ResetHostCost.
func reportHost(b *testing.B, e *Engine) {
	c := e.HostCost()
	b.ReportMetric(float64(c.Record.Nanoseconds())/float64(c.Dispatches)/1e3, "µs-record/dispatch")
	b.ReportMetric(float64(c.Encode.Nanoseconds())/float64(c.Dispatches)/1e3, "µs-encode/dispatch")
}

// BenchmarkDecodeStepHost runs chained decode steps (Submit, then Wait one
// step behind, as generation does) on the Q8_0 fixture.
func BenchmarkDecodeStepHost(b *testing.B) {
	e, s := benchSession(b, numtest.LoadFixture(b, "Q8_0"))
	ctx := context.Background()
	prev, err := e.Submit(ctx, []model.Seq{{Session: s, Tokens: []int{1}, Want: model.WantToken}})
	if err != nil {
		b.Fatal(err)
	}
	e.ResetHostCost()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next, err := e.Submit(ctx, []model.Seq{{Session: s, Continue: true, Want: model.WantToken}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := prev.Wait(); err != nil {
			b.Fatal(err)
		}
		prev = next
	}
	if _, err := prev.Wait(); err != nil {
		b.Fatal(err)
	}
	reportHost(b, e)
}

// BenchmarkDecodeStepHostIdle is BenchmarkDecodeStepHost with each step
// submitted once the previous one has finished.
func BenchmarkDecodeStepHostIdle(b *testing.B) {
	e, s := benchSession(b, numtest.LoadFixture(b, "Q8_0"))
	ctx := context.Background()
	if _, err := e.Step(ctx, []model.Seq{{Session: s, Tokens: []int{1}, Want: model.WantToken}}); err != nil {
		b.Fatal(err)
	}
	e.ResetHostCost()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Step(ctx, []model.Seq{{Session: s, Continue: true, Want: model.WantToken}}); err != nil {
			b.Fatal(err)
		}
	}
	reportHost(b, e)
}

// BenchmarkHostCostModel measures MeasureHostCost on the model file that
// RWKV_BENCH_MODEL names (a real-sized one, e.g. from rwkv synth): the host
// cost per decode step and per dispatch, without running the steps.
func BenchmarkHostCostModel(b *testing.B) {
	path := os.Getenv("RWKV_BENCH_MODEL")
	if path == "" {
		b.Skip("set RWKV_BENCH_MODEL to a GGUF file")
	}
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := model.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	e, s := benchSession(b, w)
	if _, err := e.MeasureHostCost(s, 8); err != nil { // warm
		b.Fatal(err)
	}
	b.ResetTimer()
	c, err := e.MeasureHostCost(s, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(c.PerPass().Nanoseconds())/1e3, "µs/step")
	b.ReportMetric(float64(c.PerDispatch().Nanoseconds())/1e3, "µs/dispatch")
	b.ReportMetric(float64(c.Record.Nanoseconds())/float64(c.Passes)/1e3, "µs-record/step")
}
