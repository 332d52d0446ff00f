package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// LoadOptions configure a load test: Clients concurrent clients, each
// sending streamed completion requests one after another for Duration.
type LoadOptions struct {
	// BaseURL is the server, e.g. http://127.0.0.1:8080; it must be a
	// loopback address.
	BaseURL string
	APIKey  string
	Clients int
	// Duration is how long the clients send requests; requests still
	// running then are cancelled and their tokens so far counted.
	Duration time.Duration
	// MaxTokens is each request's max_tokens (generated in full:
	// ignore_eos).
	MaxTokens int
	// PromptWords sets the length of each request's prompt (different for
	// every request, so that the prefix cache does not help).
	PromptWords int
}

// Percentiles are the 50th, 95th and 99th percentiles of a latency.
type Percentiles struct {
	P50, P95, P99 time.Duration
}

// LoadReport is what a load test measured.
type LoadReport struct {
	Clients  int
	Elapsed  time.Duration
	Requests int // completed
	Errors   int
	Tokens   int // generated tokens received, cancelled requests' included
	// TokensPerSecond is Tokens over Elapsed: all clients together.
	TokensPerSecond float64
	// TTFT runs from sending a request to its first token; ITL is the time
	// between consecutive tokens of a stream (a chunk carrying n tokens
	// counts as n gaps of a nth of its wait).
	TTFT, ITL Percentiles
	// FirstError describes the first failed request.
	FirstError string
}

// LoadTest runs the load and measures it. Its traffic goes only to
// loopback addresses.
func LoadTest(ctx context.Context, opt LoadOptions) (LoadReport, error) {
	if err := checkLoopback(opt.BaseURL); err != nil {
		return LoadReport{}, err
	}
	if opt.Clients < 1 || opt.Duration <= 0 || opt.MaxTokens < 1 {
		return LoadReport{}, fmt.Errorf("loadtest: need at least one client, a positive duration and max tokens (got %d, %v, %d)", opt.Clients, opt.Duration, opt.MaxTokens)
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Duration)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: opt.Clients, MaxConnsPerHost: opt.Clients}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	rep := LoadReport{Clients: opt.Clients}
	var ttft, itl []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for c := range opt.Clients {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				r := oneRequest(ctx, client, opt, c, i)
				mu.Lock()
				rep.Tokens += r.tokens
				itl = append(itl, r.itl...)
				if r.ttft > 0 {
					ttft = append(ttft, r.ttft)
				}
				switch {
				case r.err != nil && ctx.Err() == nil:
					rep.Errors++
					if rep.FirstError == "" {
						rep.FirstError = r.err.Error()
					}
				case r.complete:
					rep.Requests++
				}
				mu.Unlock()
				if r.err != nil && ctx.Err() == nil {
					time.Sleep(100 * time.Millisecond) // a failing server: do not spin
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	rep.TokensPerSecond = float64(rep.Tokens) / rep.Elapsed.Seconds()
	rep.TTFT, rep.ITL = percentiles(ttft), percentiles(itl)
	return rep, nil
}

// checkLoopback refuses a base URL whose host is not a loopback address.
func checkLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("loadtest: base URL %q: %w", base, err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("loadtest: base URL %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are load-tested", base)
	}
	return nil
}

// requestResult is one request's measurements.
type requestResult struct {
	tokens   int
	ttft     time.Duration
	itl      []time.Duration
	complete bool
	err      error
}

// loadWords make up the prompts.
var loadWords = strings.Fields("the river runs past old stone walls where children once played and merchants sold bread fish and cloth under a wide grey sky")

// loadPrompt is request i of client c: its own numbers first, so that no
// two prompts share more than a few tokens.
func loadPrompt(c, i, words int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Client %d, request %d:", c, i)
	for w := range words {
		b.WriteString(" " + loadWords[(c*7+i*3+w)%len(loadWords)])
	}
	return b.String()
}

// oneRequest sends one streamed completion and times its tokens from the
// usage in each chunk (continuous_usage_stats).
func oneRequest(ctx context.Context, client *http.Client, opt LoadOptions, c, i int) (r requestResult) {
	body, _ := json.Marshal(map[string]any{
		"model": "loadtest", "prompt": loadPrompt(c, i, opt.PromptWords), "max_tokens": opt.MaxTokens,
		"temperature": 1.0, "top_p": 0.9, "seed": c*100003 + i, "ignore_eos": true, "stream": true,
		"stream_options": map[string]bool{"include_usage": true, "continuous_usage_stats": true},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(opt.BaseURL, "/")+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return requestResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if opt.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+opt.APIKey)
	}
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return requestResult{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		msg := resp.Status
		if e.Error != nil {
			msg += ": " + e.Error.Message
		}
		return requestResult{err: errors.New(msg)}
	}
	sc := bufio.NewScanner(resp.Body)
	last := sent
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			r.complete = true
			break
		}
		var chunk struct {
			Usage *usage    `json:"usage"`
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			r.err = fmt.Errorf("a chunk that is not JSON: %v", err)
			return r
		}
		if chunk.Error != nil {
			r.err = errors.New(chunk.Error.Message)
			return r
		}
		if chunk.Usage == nil || chunk.Usage.CompletionTokens <= r.tokens {
			continue
		}
		now := time.Now()
		n := chunk.Usage.CompletionTokens - r.tokens
		gap := now.Sub(last) / time.Duration(n)
		if r.tokens == 0 {
			// The first token's wait is the TTFT; tokens that came with it
			// took no time of their own.
			r.ttft, gap, n = now.Sub(sent), 0, n-1
		}
		for range n {
			r.itl = append(r.itl, gap)
		}
		r.tokens, last = chunk.Usage.CompletionTokens, now
	}
	if err := sc.Err(); err != nil && r.err == nil && ctx.Err() == nil {
		r.err = err
	}
	return r
}

// percentiles of ds (nearest rank); zero when empty.
func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99)}
}
