package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/serve"
)

// TestServeLoadTest: two clients for three seconds against the tiny
// model: every completed request brought its max_tokens, the client
// counted no more tokens than the server generated, and the latencies are
// ordered.
func TestServeLoadTest(t *testing.T) {
	e, tok := cpuBackend().open(t, 0)
	s := start(t, e, tok, serve.Options{MaxBatch: 2})
	rep, err := serve.LoadTest(context.Background(), serve.LoadOptions{BaseURL: s.url, Clients: 2, Duration: 3 * time.Second, MaxTokens: 4, PromptWords: 2})
	require.NoError(t, err)
	require.Zero(t, rep.Errors, rep.FirstError)
	require.Positive(t, rep.Requests)
	require.GreaterOrEqual(t, rep.Tokens, 4*rep.Requests, "completed requests bring all their tokens")
	s.waitMetric(t, "rwkv_batch_occupancy", 0)
	require.GreaterOrEqual(t, int(s.metric(t, "rwkv_completion_tokens_total")), rep.Tokens, "the server generated what the clients received")
	require.InDelta(t, float64(rep.Tokens)/rep.Elapsed.Seconds(), rep.TokensPerSecond, 1e-9)
	require.GreaterOrEqual(t, rep.Elapsed, 3*time.Second)
	for _, p := range []serve.Percentiles{rep.TTFT, rep.ITL} {
		require.Positive(t, p.P50)
		require.LessOrEqual(t, p.P50, p.P95)
		require.LessOrEqual(t, p.P95, p.P99)
	}

	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.com", "http://192.168.1.1"} {
		_, err := serve.LoadTest(context.Background(), serve.LoadOptions{BaseURL: bad, Clients: 1, Duration: time.Second, MaxTokens: 1})
		require.ErrorContains(t, err, "only loopback addresses", bad)
	}
}
