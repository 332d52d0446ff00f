package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/bench"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/internal/synth"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

type benchOptions struct {
	models   string
	preset   string
	typ      string
	seed     uint64
	prompt   int
	gen      int
	reps     int
	batches  string
	device   string
	json     bool
	csv      bool
	profile  bool
	sample   string // sampling preset of the extra tg rows
	cacheDir string
	splitUps bool
}

func newBenchCmd(g *globalFlags) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [-m A.gguf,B.gguf | --preset 0.1b --type q8_0] [-p 512] [-n 128] [-r 5] [-b 1,8]",
		Short: "Measure prefill (pp) and decode (tg) throughput, llama-bench style, with the device's ceilings beside it",
		Long: `Measures pp<P> (one prefill of P tokens) and tg<N> (N single-token decode
steps with the argmax on the GPU) and, with -b, the aggregate decode throughput
of several sequences decoded together (tokens/s of all sequences).

Beside tokens/s it prints what bounds each test, against a probe run in the
same process. Decode reads every weight once per step: tg rows give the
effective GB/s of weight and state traffic (bytes per step from the file's
real tensor types, the weights once and the state per sequence) as a fraction
of the device's streaming-read bandwidth (a read kernel). A prefill reads each
weight once per tile of tokens and is bound by arithmetic: pp rows give matrix
GFLOP/s (2 × matrix weights × tokens: every layer's projections, LoRAs and
FFN; the head for the last token only; not the embedding, a row lookup) as a
fraction of the device's multiply-add throughput (a kernel of dependent fma
chains whose results are checked on the host). A fraction above 100% is
marked with * and explained under the table.

Without -m it benchmarks a synthetic model of a published shape (default the
0.1B preset at Q8_0), written once to a cache folder. On a software adapter
(lavapipe) the defaults shrink to pp64/tg16 with one repetition, as said on
stderr; give -p/-n/-r to override.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd, o, g)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.models, "model", "m", "", "comma-separated GGUF files (default: a synthetic --preset model)")
	f.StringVar(&o.preset, "preset", "0.1b", "synthetic model shape: "+strings.Join(synth.PresetNames(), ", "))
	f.StringVar(&o.typ, "type", "q8_0", "synthetic model type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k")
	f.Uint64Var(&o.seed, "seed", 1, "synthetic model seed")
	f.IntVarP(&o.prompt, "n-prompt", "p", 512, "prompt tokens of the pp test (0 = skip)")
	f.IntVarP(&o.gen, "n-gen", "n", 128, "generated tokens of the tg test (0 = skip)")
	f.IntVarP(&o.reps, "repetitions", "r", 5, "timed repetitions of each test (after one warm-up)")
	f.StringVarP(&o.batches, "batch", "b", "1", "comma-separated numbers of sequences decoded together")
	f.StringVar(&o.device, "device", "auto", "gpu, cpu, or auto (the GPU when there is one)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per test")
	f.BoolVar(&o.csv, "csv", false, "print CSV")
	f.BoolVar(&o.profile, "profile", false, "time one decode step per kernel family, and the host's cost of recording one")
	f.StringVar(&o.sample, "sample", "chat", "sampling preset of a second tg row per batch size, decoded as rwkv run/chat do ("+strings.Join(model.PresetNames(), ", ")+"; empty: greedy rows only)")
	f.StringVar(&o.cacheDir, "cache-dir", "", "folder for synthetic models (default: the user cache folder)")
	f.BoolVar(&o.splitUps, "split-lora-ups", false, "GPU tuning: compute the LoRA up projections as their own dispatch instead of inside the WKV kernel")
	return cmd
}

func runBench(cmd *cobra.Command, o *benchOptions, g *globalFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.json && o.csv {
		return fmt.Errorf("give either --json or --csv")
	}
	if err := checkBenchSizes(o); err != nil {
		return err
	}
	batches, err := parseBatches(o.batches)
	if err != nil {
		return err
	}
	paths, err := benchModels(o, stderr)
	if err != nil {
		return err
	}
	progress := func(s string) {}
	if f, ok := stderr.(*os.File); (ok && isTerminal(f)) || g.verbose {
		progress = func(s string) { fmt.Fprintln(stderr, "bench:", s) }
	}
	cfg := bench.Config{Prompt: o.prompt, Gen: o.gen, Reps: o.reps, Batches: batches, Profile: o.profile, SamplePreset: o.sample, Progress: progress}
	maxBatch := 1
	for _, b := range batches {
		maxBatch = max(maxBatch, b)
	}
	var all []bench.Result
	for _, path := range paths {
		rs, err := benchOne(cmd, path, o, g, cfg, maxBatch)
		if err != nil {
			return err
		}
		all = append(all, rs...)
	}
	switch {
	case o.json:
		return bench.WriteJSON(stdout, all)
	case o.csv:
		return bench.WriteCSV(stdout, all)
	default:
		return bench.WriteTable(stdout, all)
	}
}

// benchOne loads one model on the chosen device and runs the tests.
func benchOne(cmd *cobra.Command, path string, o *benchOptions, g *globalFlags, cfg bench.Config, maxBatch int) ([]bench.Result, error) {
	stderr := cmd.ErrOrStderr()
	lm, err := openModel(path)
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	m, err := loadOn(lm, engineOptions{device: o.device, seqs: maxBatch, chunk: max(64, maxBatch), splitUps: o.splitUps}, g, stderr)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tg := bench.Target{Name: filepath.Base(path), Weights: lm.weights, Engine: m.Engine, FileSize: lm.file.Size, Params: model.ParamCount(lm.file)}
	if ge, ok := m.Engine.(*engine.Engine); ok {
		dev := ge.GPUDevice()
		if dev.Info().IsSoftware() {
			shrinkForSoftware(cmd, &cfg, stderr)
		}
		bw, err := dev.ReadBandwidth(1<<30, 3)
		if err != nil {
			return nil, fmt.Errorf("measuring the read bandwidth: %w", err)
		}
		tg.Roofline = bw
		if tg.FMARate, err = dev.MultiplyAddRate(3); err != nil {
			return nil, fmt.Errorf("measuring the multiply-add throughput: %w", err)
		}
		dev.ResetPeak() // the probes' buffers are not the model's memory
	} else {
		if !cmd.Flags().Changed("n-prompt") && !cmd.Flags().Changed("n-gen") && !cmd.Flags().Changed("repetitions") {
			cfg.Prompt, cfg.Gen, cfg.Reps = 32, 8, 1
			fmt.Fprintln(stderr, "bench: CPU reference: reduced to pp32/tg8 with 1 repetition (give -p/-n/-r to override)")
		}
		tg.Roofline = bench.CPUReadBandwidth(256<<20, 3)
		tg.FMARate = bench.CPUMultiplyAddRate(3)
	}
	return bench.Run(tg, cfg)
}

// shrinkForSoftware reduces the default test sizes on a software adapter,
// unless the user set them.
func shrinkForSoftware(cmd *cobra.Command, cfg *bench.Config, stderr io.Writer) {
	var changed []string
	if !cmd.Flags().Changed("n-prompt") && cfg.Prompt > 64 {
		cfg.Prompt = 64
		changed = append(changed, "pp64")
	}
	if !cmd.Flags().Changed("n-gen") && cfg.Gen > 16 {
		cfg.Gen = 16
		changed = append(changed, "tg16")
	}
	if !cmd.Flags().Changed("repetitions") && cfg.Reps > 1 {
		cfg.Reps = 1
		changed = append(changed, "1 repetition")
	}
	if len(changed) > 0 {
		fmt.Fprintf(stderr, "bench: software adapter (no GPU): reduced to %s (give -p/-n/-r to override)\n", strings.Join(changed, ", "))
	}
}

// benchModels returns the files to measure: -m, or the cached synthetic model.
func benchModels(o *benchOptions, stderr io.Writer) ([]string, error) {
	if o.models != "" {
		var paths []string
		for _, p := range strings.Split(o.models, ",") {
			if p = strings.TrimSpace(p); p != "" {
				paths = append(paths, p)
			}
		}
		return paths, nil
	}
	preset, err := synth.PresetByName(o.preset)
	if err != nil {
		return nil, err
	}
	typ, err := gguf.ParseType(o.typ)
	if err != nil || !typ.Supported() {
		return nil, fmt.Errorf("--type %q: expected one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k", o.typ)
	}
	dir := o.cacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "rwkv-gpu")
	}
	opt := synth.Options{Preset: preset, Type: typ, Seed: o.seed}
	path := synth.CachedPath(dir, opt)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "bench: writing the synthetic %s %s model to %s (once)\n", preset.Name, typ, path)
		start := time.Now()
		if path, err = synth.Ensure(dir, opt); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "bench: written in %v\n", time.Since(start).Round(time.Millisecond))
	} else if path, err = synth.Ensure(dir, opt); err != nil {
		return nil, err
	}
	return []string{path}, nil
}

// Bounds of the bench sizes: far above any useful run, low enough that a
// typo does not start an hour-long one.
const (
	maxBenchTokens = 1 << 16
	maxBenchReps   = 1000
	maxBenchBatch  = 64
)

// checkBenchSizes checks -p, -n and -r, naming the flag and the range.
func checkBenchSizes(o *benchOptions) error {
	if err := checkInt("-p/--n-prompt", o.prompt, 0, maxBenchTokens); err != nil {
		return err
	}
	if err := checkInt("-n/--n-gen", o.gen, 0, maxBenchTokens); err != nil {
		return err
	}
	if err := checkInt("-r/--repetitions", o.reps, 1, maxBenchReps); err != nil {
		return err
	}
	if o.prompt == 0 && o.gen == 0 {
		return fmt.Errorf("-p 0 and -n 0: nothing to measure (give a prompt length, a generation length or both)")
	}
	return nil
}

// parseBatches reads -b: a list of sequence counts in [1, maxBenchBatch].
func parseBatches(s string) ([]int, error) {
	fields := listFields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("-b/--batch %q: expected comma-separated sequence counts in [1, %d]", s, maxBenchBatch)
	}
	var out []int
	for i, f := range fields {
		b, err := strconv.Atoi(f)
		if err != nil || b < 1 || b > maxBenchBatch {
			return nil, fmt.Errorf("-b/--batch: item %d %q is not a sequence count (expected an integer in [1, %d])", i+1, f, maxBenchBatch)
		}
		out = append(out, b)
	}
	return out, nil
}
