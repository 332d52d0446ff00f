package engine

import (
	"context"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"os"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// BenchmarkRecordDecodeStep measures the host's cost of one decode step of
// one sequence without the GPU: filling the pass tables and recording every
// dispatch (the recording is dropped, not submitted). The per-dispatch
// figure is what `rwkv bench --profile` reports as record time.
func BenchmarkRecordDecodeStep(b *testing.B) {
	d := gputest.OpenDevice(b)
	w := numtest.LoadFixture(b, "Q8_0")
	e, err := New(d, w, Options{StateSlots: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	in := []stepSeq{{s: s.(*Session), tokens: []int{1}, want: model.WantToken}}
	r := d.NewRecorder()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := planPasses(in, e.ml.act.tmax)[0]
		e.fill(p, in)
		e.recordPass(r, p.T, len(p.seqs), 1, 1)
		r.ReadBack(e.ids, 0, uint64(4*e.ml.ids.readN))
		r.Reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(e.DispatchesPerToken())/1e3, "µs/dispatch")
}

// BenchmarkDecodeStepHost runs chained decode steps (Submit, then Wait one
// step behind, as generation does) and reports the host's record and
// encode time per dispatch from HostCost.
func BenchmarkDecodeStepHost(b *testing.B) {
	d := gputest.OpenDevice(b)
	w := numtest.LoadFixture(b, "Q8_0")
	e, err := New(d, w, Options{StateSlots: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewSession()
	if err != nil {
		b.Fatal(err)
	}
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
	prev.Wait()
	c := e.HostCost()
	b.ReportMetric(float64(c.Record.Nanoseconds())/float64(c.Dispatches)/1e3, "µs-record/dispatch")
	b.ReportMetric(float64(c.Encode.Nanoseconds())/float64(c.Dispatches)/1e3, "µs-encode/dispatch")
}

// BenchmarkDecodeStepHostIdle is BenchmarkDecodeStepHost with each step
// submitted once the previous one has finished (the device idle while the
// host records), as rwkv bench --profile measures.
func BenchmarkDecodeStepHostIdle(b *testing.B) {
	d := gputest.OpenDevice(b)
	w := numtest.LoadFixture(b, "Q8_0")
	e, err := New(d, w, Options{StateSlots: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewSession()
	if err != nil {
		b.Fatal(err)
	}
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
	c := e.HostCost()
	b.ReportMetric(float64(c.Record.Nanoseconds())/float64(c.Dispatches)/1e3, "µs-record/dispatch")
	b.ReportMetric(float64(c.Encode.Nanoseconds())/float64(c.Dispatches)/1e3, "µs-encode/dispatch")
	b.ReportMetric(float64(c.Submit.Nanoseconds())/float64(c.Passes)/1e3, "µs-submit/step")
}

// BenchmarkHostCostModel measures MeasureHostCost on the model file that
// RWKV_BENCH_MODEL names (a real-sized one, e.g. from rwkv synth): the host
// cost per decode step and per dispatch, without running the steps.
func BenchmarkHostCostModel(b *testing.B) {
	path := os.Getenv("RWKV_BENCH_MODEL")
	if path == "" {
		b.Skip("set RWKV_BENCH_MODEL to a GGUF file")
	}
	d := gputest.OpenDevice(b)
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := model.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(d, w, Options{StateSlots: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewSession()
	if err != nil {
		b.Fatal(err)
	}
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
