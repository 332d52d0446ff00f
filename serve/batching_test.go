package serve_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/serve"
)

// TestServeConcurrentStreams: 16 streams at once (greedy and seeded, each
// its own seed and prompt) through a batch of 8 with the rest queued: each
// stream's text equals the same request answered alone by
// generate.Generate.
func TestServeConcurrentStreams(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const streams, maxBatch, cache = 16, 8, 4
		e, tok := b.open(t, maxBatch+cache)
		cases := make([]chatCase, streams)
		refs := make([]reference, streams)
		for i := range cases {
			c := chatCase{name: fmt.Sprint(i), seed: int64(100 + i), topP: 1, maxTokens: 4 + i%3,
				msgs: []generate.Message{{Role: generate.RoleUser, Content: fmt.Sprintf("Question %d: what is %d plus %d?", i, i, 2*i)}}}
			if i%2 == 1 {
				c.temperature, c.topP = 1.0, 0.8
			}
			cases[i] = c
			refs[i] = chatReference(t, e, tok, generate.ChatOptions{}, c.msgs, c.sampling(), c.maxTokens)
		}
		s := start(t, e, tok, serve.Options{MaxBatch: maxBatch, QueueSize: streams, CacheEntries: cache, PrefillBudget: 16})
		texts := make([]string, streams)
		errs := make([]error, streams)
		var wg sync.WaitGroup
		for i := range cases {
			wg.Go(func() {
				stream := s.client.Chat.Completions.NewStreaming(context.Background(), cases[i].params())
				var text strings.Builder
				for stream.Next() {
					if ch := stream.Current(); len(ch.Choices) > 0 {
						text.WriteString(ch.Choices[0].Delta.Content)
					}
				}
				texts[i], errs[i] = text.String(), stream.Err()
			})
		}
		wg.Wait()
		for i := range cases {
			require.NoError(t, errs[i], "stream %d", i)
			require.Equal(t, refs[i].text, texts[i], "stream %d (temperature %v, seed %d): reference tokens %v", i, cases[i].temperature, cases[i].seed, refs[i].tokens)
		}
		s.waitMetric(t, "rwkv_batch_occupancy", 0)
	})
}

// TestServeCacheHit: a follow-up turn starts from the state cached after
// the first turn's prompt: cached_tokens covers that prompt, only the rest
// is fed (rwkv_prompt_tokens_processed_total), and the answer equals a cold
// generate.Generate of the whole follow-up prompt, greedy and seeded. The
// same request again hits a state one token short of its prompt.
func TestServeCacheHit(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e, tok := b.open(t, 2+8)
		sys := generate.Message{Role: generate.RoleSystem, Content: "You answer in one line."}
		first := chatCase{name: "first", seed: 5, topP: 1, maxTokens: 6,
			msgs: []generate.Message{sys, {Role: generate.RoleUser, Content: "Name a colour."}}}
		firstRef := chatReference(t, e, tok, generate.ChatOptions{}, first.msgs, first.sampling(), first.maxTokens)
		followUp := func(answer string, temperature float64, seed int64) chatCase {
			return chatCase{name: fmt.Sprintf("follow-up t=%v", temperature), seed: seed, temperature: temperature, topP: 0.9, maxTokens: 6,
				msgs: append(append([]generate.Message(nil), first.msgs...),
					generate.Message{Role: generate.RoleAssistant, Content: answer},
					generate.Message{Role: generate.RoleUser, Content: "And another one?"})}
		}
		greedy, seeded := followUp(firstRef.text, 0, 9), followUp(firstRef.text, 1, 11)
		refs := map[string]reference{}
		for _, c := range []chatCase{greedy, seeded} {
			refs[c.name] = chatReference(t, e, tok, generate.ChatOptions{}, c.msgs, c.sampling(), c.maxTokens)
		}

		s := start(t, e, tok, serve.Options{MaxBatch: 2, CacheEntries: 8})
		ctx := context.Background()
		got, err := s.client.Chat.Completions.New(ctx, first.params())
		require.NoError(t, err)
		require.Equal(t, firstRef.text, got.Choices[0].Message.Content)
		require.EqualValues(t, 0, got.Usage.PromptTokensDetails.CachedTokens, "the first request finds nothing")
		s.waitMetric(t, "rwkv_cache_entries", 2) // the prompt's state and the answer's

		for _, c := range []chatCase{greedy, seeded} {
			want := refs[c.name]
			before := s.metric(t, "rwkv_prompt_tokens_processed_total")
			got, err := s.client.Chat.Completions.New(ctx, c.params())
			require.NoError(t, err)
			require.Equal(t, want.text, got.Choices[0].Message.Content, "%s: the cache hit answers as a cold run (reference tokens %v)", c.name, want.tokens)
			require.EqualValues(t, want.promptTokens, got.Usage.PromptTokens)
			cached := int(got.Usage.PromptTokensDetails.CachedTokens)
			require.GreaterOrEqual(t, cached, firstRef.promptTokens-1, "%s: the first turn's prompt state covers its prompt but the last token", c.name)
			require.Less(t, cached, want.promptTokens)
			processed := s.metric(t, "rwkv_prompt_tokens_processed_total") - before
			require.EqualValues(t, want.promptTokens-cached, processed, "%s: only the tokens after the cached prefix are fed", c.name)
		}

		// The same request again: the state one token short of its prompt.
		got, err = s.client.Chat.Completions.New(ctx, seeded.params())
		require.NoError(t, err)
		require.Equal(t, refs[seeded.name].text, got.Choices[0].Message.Content, "repeat")
		require.EqualValues(t, refs[seeded.name].promptTokens-1, got.Usage.PromptTokensDetails.CachedTokens, "repeat: all but the last prompt token cached")
		require.Positive(t, s.metric(t, "rwkv_cache_hits_total"))
		require.Positive(t, s.metric(t, "rwkv_cache_bytes"))

		// The state at the end of an answer: a prompt of token ids that
		// continues a completion's prompt and its tokens (taken from a cold
		// generate.Generate) hits it.
		p := []int{72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100} // "Hello, world"
		greedyRun := model.Sampling{}
		r1, err := generate.Generate(ctx, e, tok, generate.Request{Prompt: p, Sampling: &greedyRun, MaxTokens: 5, Stop: generate.StopRules{IgnoreEOS: true}})
		require.NoError(t, err)
		ext := slices.Concat(p, r1.Tokens, []int{33, 10})
		r2 := completionReference(t, e, tok, "", model.Sampling{}, 4, ext...)
		got1, err := s.client.Completions.New(ctx, openai.CompletionNewParams{Model: "tiny", Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(p)},
			MaxTokens: openai.Int(5), Temperature: openai.Float(0)}, option.WithJSONSet("ignore_eos", true))
		require.NoError(t, err)
		require.Equal(t, r1.Text, got1.Choices[0].Text)
		got2, err := s.client.Completions.New(ctx, openai.CompletionNewParams{Model: "tiny", Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(ext)},
			MaxTokens: openai.Int(4), Temperature: openai.Float(0)})
		require.NoError(t, err)
		require.EqualValues(t, len(p)+len(r1.Tokens), got2.Usage.PromptTokensDetails.CachedTokens, "the answer's state: prompt and generated tokens")
		require.Equal(t, r2.text, got2.Choices[0].Text, "continuing the answer's state answers as a cold run")
	})
}

func int64s(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

// TestServeCancelledStreamFreesItsSlot: with one sequence per batch, a
// stream that would run for a million tokens is cancelled by its client;
// the scheduler drops it at the next step and the next request runs.
func TestServeCancelledStreamFreesItsSlot(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e, tok := b.open(t, 1)
		s := start(t, e, tok, serve.Options{MaxBatch: 1, MaxCompletionTokens: 1 << 20})
		ctx, cancel := context.WithCancel(context.Background())
		long := openai.CompletionNewParams{Model: "tiny", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
			MaxTokens: openai.Int(1 << 20), Temperature: openai.Float(0)}
		stream := s.client.Completions.NewStreaming(ctx, long, option.WithJSONSet("ignore_eos", true))
		require.True(t, stream.Next(), "the first chunk: %v", stream.Err())
		require.Equal(t, 1.0, s.metric(t, "rwkv_batch_occupancy"))
		cancel()
		stream.Close()
		s.waitMetric(t, "rwkv_batch_occupancy", 0)
		s.waitMetric(t, "rwkv_requests_cancelled_total", 1)

		done := make(chan error, 1)
		go func() {
			_, err := s.client.Completions.New(context.Background(), openai.CompletionNewParams{Model: "tiny",
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Hello")}, MaxTokens: openai.Int(4), Temperature: openai.Float(0)})
			done <- err
		}()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Fatal("the next request did not run: the cancelled stream still holds the batch")
		}
	})
}

// TestServeQueueFull: with one sequence per batch and one waiting, a
// third request is refused with 429, Retry-After and an OpenAI error.
func TestServeQueueFull(t *testing.T) {
	e, tok := cpuBackend().open(t, 0)
	s := start(t, e, tok, serve.Options{MaxBatch: 1, QueueSize: 1, MaxCompletionTokens: 1 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := `{"model":"tiny","prompt":"Once","max_tokens":1000000,"ignore_eos":true,"temperature":0}`
	for range 2 {
		go s.client.Completions.New(ctx, openai.CompletionNewParams{}, option.WithRequestBody("application/json", []byte(body)))
	}
	s.waitMetric(t, "rwkv_batch_occupancy", 1)
	s.waitMetric(t, "rwkv_queue_length", 1)
	code, header, resp := s.post(t, "/v1/completions", body)
	require.Equal(t, 429, code, resp)
	require.Equal(t, "1", header.Get("Retry-After"))
	require.Contains(t, resp, `"type":"rate_limit_error"`)
	require.Contains(t, resp, "requests are already waiting")
	require.Equal(t, 1.0, s.metric(t, "rwkv_requests_rejected_total"))
	cancel()
	s.waitMetric(t, "rwkv_batch_occupancy", 0)
}
