package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

// startServe runs `rwkv serve` on the CPU on a free loopback port until
// the returned cancel (standing for SIGTERM); done yields its error.
func startServe(t *testing.T, shutdown time.Duration, extra func(*serveOptions)) (url string, cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	o := &serveOptions{model: fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf"), host: "127.0.0.1", port: 0, maxBatch: 2, cacheMB: 1,
		device: "cpu", queue: 4, maxPrompt: 1024, maxTokens: 1 << 20, shutdownTimeout: shutdown, ready: func(a string) { ready <- a }}
	if extra != nil {
		extra(o)
	}
	errc := make(chan error, 1)
	go func() { errc <- runServe(ctx, io.Discard, o, &globalFlags{adapter: -1}) }()
	select {
	case addr := <-ready:
		t.Cleanup(cancelCtx)
		return "http://" + addr, cancelCtx, errc
	case err := <-errc:
		t.Fatalf("rwkv serve failed to start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("rwkv serve did not start in 30 s")
	}
	return "", nil, nil
}

// sseStream posts a streamed completion and returns a reader of its
// events' data.
func sseStream(t *testing.T, url, body string) (*bufio.Scanner, io.Closer) {
	t.Helper()
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return bufio.NewScanner(resp.Body), resp.Body
}

// nextData returns the data of the next event ("" at the end).
func nextData(sc *bufio.Scanner) string {
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return d
		}
	}
	return ""
}

// TestServeCommandShutsDownGracefully: on SIGTERM (the context), a stream
// already running finishes whole (its finish reason, usage and [DONE]),
// new connections are refused, and the command returns nil.
func TestServeCommandShutsDownGracefully(t *testing.T) {
	url, term, done := startServe(t, 30*time.Second, nil)
	resp, err := http.Get(url + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	sc, body := sseStream(t, url, `{"prompt":"Once upon a time","max_tokens":40,"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}`)
	defer body.Close()
	require.NotEmpty(t, nextData(sc), "the first chunk")
	term()
	var last, prev string
	for d := nextData(sc); d != ""; d = nextData(sc) {
		prev, last = last, d
	}
	require.Equal(t, "[DONE]", last, "the running stream finished")
	var u struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal([]byte(prev), &u), prev)
	require.Equal(t, 40, u.Usage.CompletionTokens, "all 40 tokens")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("rwkv serve did not return after SIGTERM")
	}
	_, err = http.Get(url + "/health")
	require.Error(t, err, "the listener is closed")
}

// TestServeCommandCancelsAtTheDeadline: a stream that would outlast the
// shutdown timeout is cancelled: it ends with an error event, and the
// command returns promptly.
func TestServeCommandCancelsAtTheDeadline(t *testing.T) {
	url, term, done := startServe(t, 200*time.Millisecond, nil)
	sc, body := sseStream(t, url, `{"prompt":"Once","max_tokens":1000000,"temperature":0,"ignore_eos":true,"stream":true}`)
	defer body.Close()
	require.NotEmpty(t, nextData(sc))
	start := time.Now()
	term()
	var last string
	for d := nextData(sc); d != ""; d = nextData(sc) {
		last = d
	}
	require.Contains(t, last, `"error"`, "the cut stream says why")
	require.Contains(t, last, "shut down")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("rwkv serve did not return after its shutdown timeout")
	}
	require.Less(t, time.Since(start), 20*time.Second)
}

// TestServeCommandFlags: bad flag values are refused with the flag named.
func TestServeCommandFlags(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "no model given"},
		{[]string{"serve", "-m", model, "--max-batch", "0"}, "--max-batch 0: expected an integer in [1, 1024]"},
		{[]string{"serve", "-m", model, "--port", "70000"}, "--port 70000"},
		{[]string{"serve", "-m", model, "--state-cache-mb", "-1"}, "--state-cache-mb -1"},
		{[]string{"serve", "-m", model, "--host", " "}, "--host is empty"},
		{[]string{"serve", "-m", model, "--queue", "0"}, "--queue 0"},
	} {
		_, _, err := run(t, c.args...)
		require.Error(t, err, "%v", c.args)
		require.Contains(t, err.Error(), c.want)
	}
}

// TestServeCommandStreamOutlastsReadTimeout: the read timeout bounds
// reading a request, not the answer: a stream running five times longer
// than it completes.
func TestServeCommandStreamOutlastsReadTimeout(t *testing.T) {
	const readTimeout = 200 * time.Millisecond
	url, _, _ := startServe(t, time.Second, func(o *serveOptions) { o.readTimeout = readTimeout })
	start := time.Now()
	sc, body := sseStream(t, url, `{"prompt":"Once","max_tokens":100000,"temperature":0,"ignore_eos":true,"stream":true}`)
	defer body.Close()
	chunks := 0
	for d := nextData(sc); d != "" && time.Since(start) < 5*readTimeout; d = nextData(sc) {
		chunks++
	}
	require.GreaterOrEqual(t, time.Since(start), 5*readTimeout, "the stream was cut after %d chunks", chunks)
}
