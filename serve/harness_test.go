package serve_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/serve"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// fixtureType is the tiny fixture the server tests run.
const fixtureType = "F32"

// backend opens the tiny fixture model on one engine with at least slots
// state slots.
type backend struct {
	name string
	open func(t *testing.T, slots int) (model.Engine, *tokenizer.Tokenizer)
}

func cpuBackend() backend {
	return backend{"cpu", func(t *testing.T, _ int) (model.Engine, *tokenizer.Tokenizer) {
		w := numtest.LoadFixture(t, fixtureType)
		tok, err := model.LoadTokenizer(w.File)
		require.NoError(t, err)
		return cpuref.New(w), tok
	}}
}

func gpuBackend() backend {
	return backend{"gpu", func(t *testing.T, slots int) (model.Engine, *tokenizer.Tokenizer) {
		d := gputest.OpenDevice(t) // skips without an adapter, fails under CI
		w := numtest.LoadFixture(t, fixtureType)
		tok, err := model.LoadTokenizer(w.File)
		require.NoError(t, err)
		e, err := engine.New(d, w, engine.Options{StateSlots: slots})
		require.NoError(t, err)
		t.Cleanup(func() { e.Close() })
		return e, tok
	}}
}

// eachBackend runs f on the CPU reference and on the GPU engine.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range []backend{cpuBackend(), gpuBackend()} {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// testServer is a server on a loopback listener and an OpenAI client
// pointed at it.
type testServer struct {
	srv    *serve.Server
	http   *httptest.Server
	client openai.Client
	url    string
}

// start serves e on 127.0.0.1 (httptest) until the test ends.
func start(t *testing.T, e model.Engine, tok *tokenizer.Tokenizer, opt serve.Options, clientOpts ...option.RequestOption) *testServer {
	t.Helper()
	if opt.ModelName == "" {
		opt.ModelName = "tiny"
	}
	srv, err := serve.New(e, tok, opt)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)  // second: waits for the handlers
	t.Cleanup(srv.Close) // first: cancels what still runs
	opts := append([]option.RequestOption{option.WithBaseURL(ts.URL + "/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0)}, clientOpts...)
	return &testServer{srv: srv, http: ts, client: openai.NewClient(opts...), url: ts.URL}
}

// metric reads one unlabelled value from /metrics.
func (s *testServer) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			require.NoError(t, err, "metric %s", name)
			return v
		}
	}
	t.Fatalf("metric %s not found in /metrics", name)
	return 0
}

// waitMetric polls /metrics until name has the value want (10 s at most).
func (s *testServer) waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.metric(t, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s is %v, want %v", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// post sends a raw request and returns the status and body.
func (s *testServer) post(t *testing.T, path, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// reference is a chat answer computed without the server: the prompt
// text of generate.ChatOptions tokenized as a whole, one generate.Generate
// on a fresh session.
type reference struct {
	promptTokens int
	tokens       []int
	text         string
	finish       string
}

// chatReference answers msgs with ChatOptions opts.
func chatReference(t *testing.T, e model.Engine, tok *tokenizer.Tokenizer, opts generate.ChatOptions, msgs []generate.Message, sampling model.Sampling, maxTokens int) reference {
	t.Helper()
	text, err := opts.Prompt(msgs)
	require.NoError(t, err)
	ids, err := tok.Encode([]byte(text))
	require.NoError(t, err)
	res, err := generate.Generate(context.Background(), e, tok, generate.Request{Prompt: ids, Sampling: &sampling, MaxTokens: maxTokens,
		Stop: opts.StopRules(), Stream: generate.StreamOptions{TrimLeadingSpace: opts.Think == generate.ThinkOff}})
	require.NoError(t, err)
	return reference{promptTokens: len(ids), tokens: res.Tokens, text: res.Text, finish: finishOf(res.Finish)}
}

// completionReference continues a raw prompt, or the token ids given
// instead.
func completionReference(t *testing.T, e model.Engine, tok *tokenizer.Tokenizer, prompt string, sampling model.Sampling, maxTokens int, ids ...int) reference {
	t.Helper()
	if len(ids) == 0 {
		var err error
		ids, err = tok.Encode([]byte(prompt))
		require.NoError(t, err)
	}
	res, err := generate.Generate(context.Background(), e, tok, generate.Request{Prompt: ids, Sampling: &sampling, MaxTokens: maxTokens})
	require.NoError(t, err)
	return reference{promptTokens: len(ids), tokens: res.Tokens, text: res.Text, finish: finishOf(res.Finish)}
}

// finishOf is OpenAI's finish_reason, written out here independently of
// the server's mapping.
func finishOf(f generate.Finish) string {
	switch f {
	case generate.FinishLength:
		return "length"
	case generate.FinishStop, generate.FinishEOS:
		return "stop"
	}
	return string(f)
}

// sampled is the sampler the tests ask for: the server's defaults for the
// fields they do not send (penalty decay 0.996).
func sampled(temperature, topP float64, seed int64) model.Sampling {
	return model.Sampling{Temperature: float32(temperature), TopP: float32(topP), PenaltyDecay: 0.996, Seed: uint64(seed)}
}
