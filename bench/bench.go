package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Config says what to measure, llama-bench style.
type Config struct {
	Prompt  int   // pp test: one prefill of this many tokens (0 = skip)
	Gen     int   // tg test: this many single-token decode steps (0 = skip)
	Reps    int   // timed repetitions per test (a warm-up run comes first)
	Batches []int // tg with several sequences at once (aggregate tokens/s); 1 = single stream
	Profile bool  // time per kernel family per token (GPU only)
	// Progress, when set, receives one line per finished run.
	Progress func(string)
	// clock reads the time (time.Now when nil); tests make it tick by a
	// known amount per reading.
	clock func() time.Time
}

// Result is one line of the benchmark table (one test of one model).
type Result struct {
	Model              string  `json:"model"`
	Type               string  `json:"type"`
	SizeBytes          int64   `json:"size_bytes"`
	Params             uint64  `json:"params"`
	Device             string  `json:"device"`
	Backend            string  `json:"backend"`
	Test               string  `json:"test"`
	Batch              int     `json:"batch"`
	TokensPerS         float64 `json:"tokens_per_s"`
	Stddev             float64 `json:"stddev"`
	Reps               int     `json:"reps"`
	BytesPerStep       int64   `json:"bytes_per_step"`        // tg rows: weights once + per-sequence traffic × batch; 0 on pp rows
	GBPerS             float64 `json:"gb_per_s"`              // tg rows: BytesPerStep × steps/s; 0 on pp rows
	RooflineGBPerS     float64 `json:"roofline_gb_per_s"`     // streaming-read probe, every row
	RooflineFraction   float64 `json:"roofline_fraction"`     // tg rows: GBPerS / RooflineGBPerS
	MatrixFLOPs        int64   `json:"matrix_flops"`          // pp rows: MatrixParams.PrefillFLOPs of one prefill; 0 on tg rows
	GFLOPPerS          float64 `json:"gflop_per_s"`           // pp rows: MatrixFLOPs × prefills/s
	FMAProbeGFLOPPerS  float64 `json:"fma_probe_gflop_per_s"` // multiply-add probe, every row
	FMAFraction        float64 `json:"fma_fraction"`          // pp rows: GFLOPPerS / FMAProbeGFLOPPerS
	DispatchesPerToken int     `json:"dispatches_per_token"`
	PeakGPUBytes       uint64  `json:"peak_gpu_bytes"`
	// Profile holds, per kernel family, the time per token (GPU, --profile).
	Profile       []KernelShare `json:"profile,omitempty"`
	ProfileMethod string        `json:"profile_method,omitempty"`
	// Host time to record and encode one decode step (GPU, --profile),
	// measured without running the steps (Engine.MeasureHostCost): per
	// step, split into recording and encoding, and per dispatch.
	HostStepMicros     float64 `json:"host_us_per_step,omitempty"`
	HostRecordMicros   float64 `json:"host_record_us_per_step,omitempty"`
	HostEncodeMicros   float64 `json:"host_encode_us_per_step,omitempty"`
	HostDispatchMicros float64 `json:"host_us_per_dispatch,omitempty"`
}

// KernelShare is one kernel family's time per token.
type KernelShare struct {
	Kernel      string  `json:"kernel"`
	MicrosPerTk float64 `json:"us_per_token"`
	Share       float64 `json:"share"`
	GBPerS      float64 `json:"gb_per_s,omitempty"` // effective bandwidth, for kernels that stream weights
}

// Traffic is the memory traffic of one decoded token (spec/rwkv7.md §9),
// from the file's real tensor types.
type Traffic struct {
	Weights int64 // matrices read per token (head included, embedding row)
	PerSeq  int64 // state read and written, float vectors, logits
}

// TokenTraffic computes the bytes per decoded token of a model:
//
//	weights = Σ matrix bytes (r, k, v, o, LoRAs, FFN, head) + one embedding row
//	per sequence = 4·(19·D·L + 4·D) float vectors + 2·4·L·D·N WKV state
//	               + 2·8·L·D shift vectors + 4·V logits
func TokenTraffic(w *model.Weights) Traffic {
	c := w.Config
	var t Traffic
	for _, m := range w.Matrices() {
		t.Weights += m.Bytes()
	}
	t.Weights += int64(w.Embed.RowBytes)
	L, D, N, V := int64(c.Layers), int64(c.Dim), int64(c.HeadSize), int64(c.Vocab)
	t.PerSeq = 4*(19*D*L+4*D) + 2*4*L*D*N + 2*8*L*D + 4*V
	return t
}

// wkvTraffic is what the WKV kernel reads and writes per token: the LoRA up
// projections and the WKV state (read and written).
func wkvTraffic(w *model.Weights) int64 {
	c := w.Config
	var n int64
	for l := range w.Layers {
		L := &w.Layers[l]
		n += L.W2.Bytes() + L.A2.Bytes() + L.G2.Bytes()
		if l > 0 {
			n += L.V2.Bytes()
		}
	}
	return n + 2*4*int64(c.Layers)*int64(c.Dim)*int64(c.HeadSize)
}

// Step is the bytes of one decode step of batch sequences: the weights
// once, the per-sequence traffic per sequence.
func (t Traffic) Step(batch int) int64 { return t.Weights + int64(batch)*t.PerSeq }

// MainType names a model's storage type by its largest matrices (the
// time-mix key of layer 0), e.g. "Q4_K".
func MainType(w *model.Weights) gguf.Type { return w.Layers[0].Wk.Type }

// Stats returns the mean and sample standard deviation.
func Stats(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) > 1 {
		for _, x := range xs {
			sd += (x - mean) * (x - mean)
		}
		sd = math.Sqrt(sd / float64(len(xs)-1))
	}
	return mean, sd
}

// Target is one loaded model on one engine.
type Target struct {
	Name     string // file name for the table
	Weights  *model.Weights
	Engine   model.Engine
	FileSize int64
	Params   uint64
	// Roofline is the device's measured streaming-read bandwidth in bytes/s
	// (0 when unknown).
	Roofline float64
	// FMARate is the device's measured multiply-add throughput in FLOP/s
	// (0 when unknown).
	FMARate float64
}

// gpuEngine is what the benchmark needs from the GPU engine beyond
// model.Engine.
type gpuEngine interface {
	DispatchesPerToken() int
	GPUDevice() *gpu.Device
	ProfileStep(s model.Session, token int) (gpu.Timing, error)
	MeasureHostCost(s model.Session, steps int) (engine.HostCost, error)
}

// Run measures the target: pp (prefill), tg (single-stream decode) and tg at
// each batch size, and returns one Result per test.
func Run(tg Target, cfg Config) ([]Result, error) {
	if cfg.Reps < 1 {
		cfg.Reps = 1
	}
	w := tg.Weights
	c := w.Config
	traffic := TokenTraffic(w)
	base := Result{
		Model: tg.Name, Type: MainType(w).String(), SizeBytes: tg.FileSize, Params: tg.Params,
		Device: tg.Engine.Device(), Backend: "cpu", Reps: cfg.Reps, RooflineGBPerS: tg.Roofline / 1e9,
		FMAProbeGFLOPPerS: tg.FMARate / 1e9,
	}
	ge, isGPU := tg.Engine.(gpuEngine)
	if isGPU {
		base.Backend = "webgpu"
		base.DispatchesPerToken = ge.DispatchesPerToken()
	}
	// A fixed pseudo-random token sequence (no tokenizer needed).
	tokens := func(n int) []int {
		ids := make([]int, n)
		x := uint32(12345)
		for i := range ids {
			x = x*1664525 + 1013904223
			ids[i] = int(x>>8) % c.Vocab
		}
		return ids
	}
	var results []Result
	finish := func(r Result, rates []float64) {
		r.setRates(rates, cfg.Prompt)
		if isGPU {
			r.PeakGPUBytes = ge.GPUDevice().PeakBytes()
		}
		results = append(results, r)
		if cfg.Progress != nil {
			cfg.Progress(fmt.Sprintf("%s %s: %.2f ± %.2f t/s", r.Model, r.Test, r.TokensPerS, r.Stddev))
		}
	}

	if cfg.Prompt > 0 {
		ids := tokens(cfg.Prompt)
		var rates []float64
		for rep := -1; rep < cfg.Reps; rep++ {
			s, err := tg.Engine.NewSession()
			if err != nil {
				return nil, err
			}
			start := cfg.now()
			_, err = model.Forward(context.Background(), tg.Engine, s, ids, model.WantLast)
			d := cfg.since(start)
			s.Close()
			if err != nil {
				return nil, fmt.Errorf("bench: pp%d: %w", cfg.Prompt, err)
			}
			if rep >= 0 {
				rates = append(rates, TokensPerS(cfg.Prompt, d))
			}
		}
		r := base
		r.Test, r.Batch = fmt.Sprintf("pp%d", cfg.Prompt), 1
		r.MatrixFLOPs = CountMatrixParams(w).PrefillFLOPs(cfg.Prompt, 1) // logits of the last token only
		finish(r, rates)
	}

	batches := cfg.Batches
	if len(batches) == 0 {
		batches = []int{1}
	}
	for _, b := range batches {
		if cfg.Gen <= 0 {
			break
		}
		rates, prof, err := runTG(tg.Engine, ge, b, cfg, tokens(b), traffic.Weights-int64(w.Embed.RowBytes), wkvTraffic(w))
		if err != nil {
			return nil, err
		}
		r := base
		r.Test, r.Batch, r.BytesPerStep = fmt.Sprintf("tg%d", cfg.Gen), b, traffic.Step(b)
		if b > 1 {
			r.Test = fmt.Sprintf("tg%d@b%d", cfg.Gen, b)
		}
		if prof != nil {
			r.Profile, r.ProfileMethod = prof.shares, prof.method
			if c := prof.cost; c != nil && c.Passes > 0 {
				us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
				r.HostRecordMicros = us(c.Record) / float64(c.Passes)
				r.HostEncodeMicros = us(c.Encode) / float64(c.Passes)
				r.HostStepMicros = r.HostRecordMicros + r.HostEncodeMicros
				r.HostDispatchMicros = us(c.Record+c.Encode) / float64(c.Dispatches)
			}
		}
		finish(r, rates)
	}
	return results, nil
}

// runTG times cfg.Gen decode steps of b sequences; the rates are aggregate
// tokens per second (b tokens per step).
func runTG(e model.Engine, ge gpuEngine, b int, cfg Config, first []int, weightBytes, wkvBytes int64) ([]float64, *profile, error) {
	var sessions []model.Session
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := 0; i < b; i++ {
		s, err := e.NewSession()
		if err != nil {
			if errors.Is(err, model.ErrNoSlot) {
				return nil, nil, fmt.Errorf("bench: batch %d needs %d sequence slots: %w", b, b, err)
			}
			return nil, nil, err
		}
		sessions = append(sessions, s)
	}
	var rates []float64
	for rep := -1; rep < cfg.Reps; rep++ {
		for _, s := range sessions {
			if err := s.Reset(); err != nil {
				return nil, nil, err
			}
		}
		start := cfg.now()
		if err := decode(context.Background(), e, sessions, first, cfg.Gen); err != nil {
			return nil, nil, fmt.Errorf("bench: tg%d batch %d: %w", cfg.Gen, b, err)
		}
		d := cfg.since(start)
		if rep >= 0 {
			rates = append(rates, DecodeTokensPerS(b, cfg.Gen, d))
		}
	}
	var prof *profile
	if cfg.Profile && ge != nil && b == 1 {
		p, err := profileStep(ge, sessions[0], first[0], weightBytes, wkvBytes)
		if err != nil {
			return nil, nil, err
		}
		c, err := hostCost(ge, sessions[0], hostCostSteps)
		if err != nil {
			return nil, nil, err
		}
		p.cost = &c
		prof = p
	}
	return rates, prof, nil
}

// decode runs n chained greedy steps of the sessions, one token each per
// step, the way generation does: each step feeds back the tokens the
// previous one chose on the device (Continue), and is submitted before the
// previous step's tokens are read, so the GPU never waits for the host.
func decode(ctx context.Context, e model.Engine, sessions []model.Session, first []int, n int) error {
	seqs := make([]model.Seq, len(sessions))
	for i, s := range sessions {
		seqs[i] = model.Seq{Session: s, Tokens: []int{first[i]}, Want: model.WantToken}
	}
	prev, err := e.Submit(ctx, seqs)
	if err != nil {
		return err
	}
	for i, s := range sessions {
		seqs[i] = model.Seq{Session: s, Continue: true, Want: model.WantToken}
	}
	for step := 1; step < n; step++ {
		next, err := e.Submit(ctx, seqs)
		if err != nil {
			return err
		}
		if _, err := prev.Wait(); err != nil {
			return err
		}
		prev = next
	}
	_, err = prev.Wait()
	return err
}

// hostCostSteps is the number of decode steps hostCost times.
const hostCostSteps = 64

// hostCost measures the host's time to record and encode a decode step,
// without running the steps: on a CPU driver such as lavapipe the GPU's
// work runs on the host's own cores and evicts its caches, which says
// nothing about the host's cost beside a real GPU.
func hostCost(ge gpuEngine, s model.Session, steps int) (engine.HostCost, error) {
	if _, err := ge.MeasureHostCost(s, 4); err != nil { // warm
		return engine.HostCost{}, fmt.Errorf("bench: host cost: %w", err)
	}
	c, err := ge.MeasureHostCost(s, steps)
	if err != nil {
		return engine.HostCost{}, fmt.Errorf("bench: host cost: %w", err)
	}
	return c, nil
}
