package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/rwkv"
	"github.com/rwkv-gpu/rwkv-gpu/serve"
)

type serveOptions struct {
	model, host, apiKey, name, device string
	port, maxBatch, cacheMB, queue    int
	maxPrompt, maxTokens, prefill     int
	passTokens                        int
	shutdownTimeout                   time.Duration
	// readTimeout bounds reading a request, headers and body (0: 60 s).
	readTimeout time.Duration
	// ready, when set, is told the address once the server listens
	// (tests).
	ready func(addr string)
}

func newServeCmd(g *globalFlags) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve -m MODEL.gguf [--host 127.0.0.1] [--port 8080] [--max-batch N] [--state-cache-mb M] [--api-key KEY]",
		Short: "Serve the model over an OpenAI-compatible HTTP API with continuous batching",
		Long: `serve answers POST /v1/chat/completions and /v1/completions (streamed as
server-sent events or whole), GET /v1/models, /health and /metrics
(Prometheus). Requests join the running batch between steps; prompts are
fed in bounded chunks next to the streams being decoded. The state at the
end of each prompt and answer is kept in a prefix cache (--state-cache-mb):
a follow-up turn forks it and feeds only its new tokens. SIGINT or SIGTERM
lets running requests finish (--shutdown-timeout), then cancels them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, cmd.ErrOrStderr(), o, g)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.model, "model", "m", "", "GGUF model file")
	f.StringVar(&o.host, "host", "127.0.0.1", "address to listen on (loopback by default)")
	f.IntVar(&o.port, "port", 8080, "TCP port (0: any free port)")
	f.IntVar(&o.maxBatch, "max-batch", 8, "the most sequences generated together")
	f.IntVar(&o.cacheMB, "state-cache-mb", 256, "device memory for cached prefix states, MiB (0: no cache)")
	f.StringVar(&o.apiKey, "api-key", "", "bearer token every endpoint but /health requires (default $RWKV_API_KEY)")
	f.StringVar(&o.name, "name", "", "the model id in the API (default: the file's general.name, else its base name)")
	f.StringVar(&o.device, "device", "auto", "gpu, cpu, or auto (the GPU when there is one)")
	f.IntVar(&o.queue, "queue", 64, "the most requests waiting for a place in the batch (more get 429)")
	f.IntVar(&o.maxPrompt, "max-prompt-tokens", 16384, "the longest prompt accepted, in tokens")
	f.IntVar(&o.maxTokens, "max-tokens", 4096, "the largest max_tokens accepted")
	f.IntVar(&o.prefill, "prefill-chunk", 0, "prompt tokens fed per step across requests (0: the engine's pass size less --max-batch, at least 16)")
	f.IntVar(&o.passTokens, "pass-tokens", 0, "the most tokens of one GPU pass; a step with more runs as several passes (0: the engine's default, 64)")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long running requests may take to finish before they are cancelled")
	return cmd
}

// Bounds of the serve flags.
const (
	maxServeBatch = 1024
	maxServeQueue = 1 << 20
)

func (o *serveOptions) check() error {
	if o.model == "" {
		return errNoModel
	}
	for _, c := range []struct {
		flag  string
		v, lo int
		hi    int
	}{
		{"--port", o.port, 0, 65535},
		{"--max-batch", o.maxBatch, 1, maxServeBatch},
		{"--state-cache-mb", o.cacheMB, 0, 1 << 20},
		{"--queue", o.queue, 1, maxServeQueue},
		{"--max-prompt-tokens", o.maxPrompt, 1, 1 << 24},
		{"--max-tokens", o.maxTokens, 1, 1 << 24},
		{"--prefill-chunk", o.prefill, 0, 1 << 20},
		{"--pass-tokens", o.passTokens, 0, 4096},
	} {
		if err := checkInt(c.flag, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	if o.shutdownTimeout < 0 {
		return fmt.Errorf("--shutdown-timeout %v: expected a non-negative duration", o.shutdownTimeout)
	}
	if strings.TrimSpace(o.host) == "" {
		return errors.New("--host is empty: expected an address such as 127.0.0.1")
	}
	return nil
}

// servedModel is a model opened for serving with the slots the server
// needs: max-batch sequences plus the cached states that fit in the
// cache's memory (fewer when the device's binding limit holds fewer).
type servedModel struct {
	*rwkv.Model
	cacheEntries int
	slotBytes    uint64 // device memory of one state slot (state and sampler)
}

// openForServing opens path with maxBatch + cacheMB worth of state slots
// and passes of at most passTokens tokens (0: the engine's default).
func openForServing(path, device string, maxBatch, cacheMB, passTokens int, g *globalFlags, stderr io.Writer) (*servedModel, error) {
	lm, err := openModel(path)
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	// One slot's state and sampler, as the engine plans them.
	plan, err := engine.PlanMemory(lm.weights, engine.TypicalLimits, engine.Options{StateSlots: 1})
	if err != nil {
		return nil, err
	}
	perSlot := plan.State + plan.Sampler
	wantCache := int(uint64(cacheMB) << 20 / perSlot)
	opt := rwkvOptions(engineOptions{device: device, chunk: passTokens}, g, stderr)
	// StateMemory, not StateSlots: the engine then caps the slots at what
	// its storage binding holds instead of failing.
	opt.Engine.StateMemory = uint64(maxBatch+wantCache) * perSlot
	m, err := rwkv.Open(path, opt)
	if err != nil {
		return nil, err
	}
	sm := &servedModel{Model: m, cacheEntries: wantCache, slotBytes: perSlot}
	if e, ok := m.Engine.(*engine.Engine); ok {
		slots := e.StateSlots()
		if slots < maxBatch {
			m.Close()
			return nil, fmt.Errorf("--max-batch %d: this device holds only %d state slots of %.1f MiB: lower --max-batch", maxBatch, slots, float64(perSlot)/(1<<20))
		}
		if slots-maxBatch < wantCache {
			fmt.Fprintf(stderr, "rwkv serve: the device holds %d state slots: the cache keeps %d states, not the %d that --state-cache-mb %d allows\n",
				slots, slots-maxBatch, wantCache, cacheMB)
		}
		// The plan's alignment may round one more slot into the budget:
		// the cache keeps no more than its memory allows.
		sm.cacheEntries = min(slots-maxBatch, wantCache)
	} else {
		sm.slotBytes = uint64(m.Config.StateBytes()) // the CPU engine keeps states in host memory, without a sampler slot
		sm.cacheEntries = int(uint64(cacheMB) << 20 / sm.slotBytes)
	}
	return sm, nil
}

// modelName is the model's id in the API.
func modelName(flag string, m *rwkv.Model) string {
	switch {
	case flag != "":
		return flag
	case m.Name != "":
		return m.Name
	}
	return strings.TrimSuffix(filepath.Base(m.Path), filepath.Ext(m.Path))
}

// prefillBudget is --prefill-chunk, or the engine's pass size less the
// decoding sequences (at least 16).
func prefillBudget(flag, maxBatch int, m *rwkv.Model) int {
	if flag > 0 {
		return flag
	}
	pass := 64
	if e, ok := m.Engine.(*engine.Engine); ok {
		pass = e.MaxTokens()
	}
	return max(16, pass-maxBatch)
}

func runServe(ctx context.Context, stderr io.Writer, o *serveOptions, g *globalFlags) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.apiKey == "" {
		o.apiKey = os.Getenv("RWKV_API_KEY")
	}
	m, err := openForServing(o.model, o.device, o.maxBatch, o.cacheMB, o.passTokens, g, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	opt := serve.Options{
		ModelName: modelName(o.name, m.Model), MaxBatch: o.maxBatch, QueueSize: o.queue,
		CacheEntries: m.cacheEntries, StateBytes: int64(m.slotBytes), PrefillBudget: prefillBudget(o.prefill, o.maxBatch, m.Model),
		MaxPromptTokens: o.maxPrompt, MaxCompletionTokens: o.maxTokens, DefaultMaxTokens: min(1024, o.maxTokens),
		APIKey: o.apiKey, Log: stderr,
	}
	srv, err := serve.New(m.Engine, m.Tokenizer, opt)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return fmt.Errorf("--host %s --port %d: %w", o.host, o.port, err)
	}
	if !isLoopback(o.host) && o.apiKey == "" {
		fmt.Fprintf(stderr, "rwkv serve: warning: listening on %s without --api-key: anyone who reaches it can use the model\n", o.host)
	}
	fmt.Fprintf(stderr, "rwkv serve: %s on %s at http://%s/v1 (max batch %d, queue %d, cache %d states of %.1f MiB, prefill %d tokens per step)\n",
		opt.ModelName, m.Device(), ln.Addr(), opt.MaxBatch, opt.QueueSize, opt.CacheEntries, float64(m.slotBytes)/(1<<20), opt.PrefillBudget)
	if o.ready != nil {
		o.ready(ln.Addr().String())
	}
	return serveUntil(ctx, ln, srv, o, stderr)
}

// serveUntil serves on ln until ctx is done, then shuts down: running
// requests get o.shutdownTimeout to finish, the rest are cancelled. No
// write timeout: streams last as long as their generation (the server
// bounds each write instead).
func serveUntil(ctx context.Context, ln net.Listener, srv *serve.Server, o *serveOptions, stderr io.Writer) error {
	read := o.readTimeout
	if read == 0 {
		read = 60 * time.Second
	}
	timeout := o.shutdownTimeout
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: min(10*time.Second, read),
		ReadTimeout:       read,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(stderr, "rwkv serve: shutting down: running requests have %v to finish\n", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(stderr, "rwkv serve: cancelling the requests still running")
		srv.Close() // handlers answer at once
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		if err = hs.Shutdown(cctx); err != nil {
			err = hs.Close()
		}
	}
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return err
}

// isLoopback reports whether host names a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
