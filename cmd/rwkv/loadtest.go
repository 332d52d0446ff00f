package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/synth"
	"github.com/rwkv-gpu/rwkv-gpu/serve"
)

type loadtestOptions struct {
	model, preset, typ, clients, device string
	duration                            time.Duration
	maxTokens, promptWords, cacheMB     int
	prefill, passTokens                 int
}

func newLoadtestCmd(g *globalFlags) *cobra.Command {
	o := &loadtestOptions{}
	cmd := &cobra.Command{
		Use:   "loadtest [-m MODEL.gguf | --preset 0.1b --type q8_0] [--clients 1,8,32] [--duration 20s] [--max-tokens 32]",
		Short: "Measure rwkv serve under N concurrent streaming clients (tokens/s, time to first token, inter-token latency)",
		Long: `loadtest starts the server in-process on 127.0.0.1 and, for each client
count, runs that many clients for --duration, each sending streamed
completion requests (a different prompt each, --max-tokens generated in
full) one after another. The batch holds as many sequences as there are
clients. It prints aggregate tokens/s (and its ratio to the first row: the
batching gain), and the 50th, 95th and 99th percentiles of the time to first
token and of the time between tokens. Without -m it uses the synthetic
model of rwkv bench (--preset, --type), written once to the cache folder.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoadtest(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, g)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.model, "model", "m", "", "GGUF model file (default: a synthetic --preset model)")
	f.StringVar(&o.preset, "preset", "0.1b", "synthetic model shape: "+strings.Join(synth.PresetNames(), ", "))
	f.StringVar(&o.typ, "type", "q8_0", "synthetic model tensor type")
	f.StringVar(&o.clients, "clients", "1,8,32", "comma-separated client counts, one run each")
	f.DurationVar(&o.duration, "duration", 20*time.Second, "how long each run sends requests")
	f.IntVar(&o.maxTokens, "max-tokens", 32, "tokens each request generates")
	f.IntVar(&o.promptWords, "prompt-words", 16, "words in each prompt (after its client and request numbers)")
	f.IntVar(&o.cacheMB, "state-cache-mb", 0, "prefix-state cache memory, MiB (the prompts differ, so 0 by default)")
	f.IntVar(&o.prefill, "prefill-chunk", 0, "prompt tokens fed per step (0: as rwkv serve chooses)")
	f.IntVar(&o.passTokens, "pass-tokens", 0, "the most tokens of one GPU pass (0: the engine's default, 64)")
	f.StringVar(&o.device, "device", "auto", "gpu, cpu, or auto (the GPU when there is one)")
	return cmd
}

// parseClients reads --clients.
func parseClients(s string) ([]int, error) {
	var out []int
	for _, f := range listFields(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxServeBatch {
			return nil, fmt.Errorf("--clients: %q is not a client count (expected integers in [1, %d])", f, maxServeBatch)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("--clients: no client counts given (e.g. 1,8,32)")
	}
	return out, nil
}

// synthModel returns the cached synthetic model bench uses.
func synthModel(preset, typeName string, stderr io.Writer) (string, error) {
	p, err := synth.PresetByName(preset)
	if err != nil {
		return "", err
	}
	typ, err := gguf.ParseType(typeName)
	if err != nil || !typ.Supported() {
		return "", fmt.Errorf("--type %q: expected one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k", typeName)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "rwkv-gpu")
	opt := synth.Options{Preset: p, Type: typ, Seed: 1}
	if _, err := os.Stat(synth.CachedPath(dir, opt)); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "loadtest: writing the synthetic %s %s model to %s (once)\n", p.Name, typ, synth.CachedPath(dir, opt))
	}
	return synth.Ensure(dir, opt)
}

func runLoadtest(ctx context.Context, stdout, stderr io.Writer, o *loadtestOptions, g *globalFlags) error {
	clients, err := parseClients(o.clients)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		flag      string
		v, lo, hi int
	}{
		{"--max-tokens", o.maxTokens, 1, 1 << 16},
		{"--prompt-words", o.promptWords, 0, 1 << 16},
		{"--state-cache-mb", o.cacheMB, 0, 1 << 20},
		{"--prefill-chunk", o.prefill, 0, 1 << 20},
		{"--pass-tokens", o.passTokens, 0, 4096},
	} {
		if err := checkInt(c.flag, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	if o.duration <= 0 {
		return fmt.Errorf("--duration %v: expected a positive duration", o.duration)
	}
	path := o.model
	if path == "" {
		if path, err = synthModel(o.preset, o.typ, stderr); err != nil {
			return err
		}
	}
	most := slices.Max(clients)
	m, err := openForServing(path, o.device, most, o.cacheMB, o.passTokens, g, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stderr, "loadtest: %s on %s, %d tokens per request, %v per run\n", filepath.Base(path), m.Device(), o.maxTokens, o.duration)
	fmt.Fprintln(stdout, "| clients | requests | tokens | t/s | vs 1st row | TTFT p50 | TTFT p95 | TTFT p99 | ITL p50 | ITL p95 | ITL p99 | errors |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	var first float64
	for i, n := range clients {
		warm := i == 0
		rep, err := loadRun(ctx, m, n, o, warm)
		if err != nil {
			return err
		}
		if i == 0 {
			first = rep.TokensPerSecond
		}
		gain := "-"
		if first > 0 {
			gain = fmt.Sprintf("%.2f×", rep.TokensPerSecond/first)
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
		fmt.Fprintf(stdout, "| %d | %d | %d | %.2f | %s | %s | %s | %s | %s | %s | %s | %d |\n", n, rep.Requests, rep.Tokens, rep.TokensPerSecond, gain,
			ms(rep.TTFT.P50), ms(rep.TTFT.P95), ms(rep.TTFT.P99), ms(rep.ITL.P50), ms(rep.ITL.P95), ms(rep.ITL.P99), rep.Errors)
		if rep.Errors > 0 {
			fmt.Fprintf(stderr, "loadtest: %d clients: %d requests failed, the first: %s\n", n, rep.Errors, rep.FirstError)
		}
	}
	return nil
}

// loadRun serves the model on a loopback port with a batch of n and runs
// n clients against it; warm sends one short request first.
func loadRun(ctx context.Context, m *servedModel, n int, o *loadtestOptions, warm bool) (serve.LoadReport, error) {
	srv, err := serve.New(m.Engine, m.Tokenizer, serve.Options{ModelName: "loadtest", MaxBatch: n, QueueSize: n,
		CacheEntries: m.cacheEntries, StateBytes: int64(m.slotBytes), PrefillBudget: prefillBudget(o.prefill, n, m.Model),
		MaxCompletionTokens: max(o.maxTokens, 16)})
	if err != nil {
		return serve.LoadReport{}, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return serve.LoadReport{}, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	if warm {
		if _, err := serve.LoadTest(ctx, serve.LoadOptions{BaseURL: base, Clients: 1, Duration: 2 * time.Second, MaxTokens: 4, PromptWords: o.promptWords}); err != nil {
			return serve.LoadReport{}, err
		}
	}
	return serve.LoadTest(ctx, serve.LoadOptions{BaseURL: base, Clients: n, Duration: o.duration, MaxTokens: o.maxTokens, PromptWords: o.promptWords})
}
