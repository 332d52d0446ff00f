package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/serve"
)

// openAIError is the body of an error response.
type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, body string) openAIError {
	t.Helper()
	var e openAIError
	require.NoError(t, json.Unmarshal([]byte(body), &e), "an OpenAI error body: %s", body)
	require.NotEmpty(t, e.Error.Message, body)
	return e
}

const hi = `"messages":[{"role":"user","content":"hi"}]`

// TestServeBadRequests: malformed bodies, fields of the wrong type or out
// of range, unsupported features and prompts over the limit each get a 400
// (413 for a body over the limit) in OpenAI's error shape with a message
// naming the problem; the server answers a good request afterwards.
func TestServeBadRequests(t *testing.T) {
	e, tok := cpuBackend().open(t, 0)
	s := start(t, e, tok, serve.Options{MaxPromptTokens: 64, MaxCompletionTokens: 100, MaxBodyBytes: 4096})
	long := strings.Repeat("word ", 100)
	cases := []struct {
		name, path, body string
		status           int
		param, message   string
	}{
		{"empty body", "/v1/chat/completions", ``, 400, "", "the request body is empty"},
		{"malformed JSON", "/v1/chat/completions", `{"messages": [`, 400, "", "malformed JSON"},
		{"not an object", "/v1/chat/completions", `[1, 2]`, 400, "", "must be a JSON object"},
		{"trailing data", "/v1/chat/completions", `{` + hi + `} {}`, 400, "", "unexpected data after the JSON object"},
		{"messages of the wrong type", "/v1/chat/completions", `{"messages": "hi"}`, 400, "messages", `field "messages": expected an array, got string`},
		{"temperature of the wrong type", "/v1/chat/completions", `{` + hi + `, "temperature": "hot"}`, 400, "temperature", `field "temperature": expected a number, got string`},
		{"max_tokens fractional", "/v1/chat/completions", `{` + hi + `, "max_tokens": 1.5}`, 400, "max_tokens", `field "max_tokens": expected an integer`},
		{"no messages", "/v1/chat/completions", `{"messages": []}`, 400, "messages", "messages is empty"},
		{"messages missing", "/v1/chat/completions", `{"model": "tiny"}`, 400, "messages", "messages is empty"},
		{"max_tokens 0", "/v1/chat/completions", `{` + hi + `, "max_tokens": 0}`, 400, "max_tokens", "max_tokens 0 is out of range: expected an integer in [1, 100]"},
		{"max_tokens above the limit", "/v1/chat/completions", `{` + hi + `, "max_tokens": 101}`, 400, "max_tokens", "max_tokens 101 is out of range"},
		{"max_completion_tokens negative", "/v1/chat/completions", `{` + hi + `, "max_completion_tokens": -3}`, 400, "max_completion_tokens", "max_completion_tokens -3 is out of range"},
		{"n 2", "/v1/chat/completions", `{` + hi + `, "n": 2}`, 400, "n", "n 2 is not supported"},
		{"temperature above 2", "/v1/chat/completions", `{` + hi + `, "temperature": 2.5}`, 400, "temperature", "temperature 2.5 is out of range"},
		{"top_p above 1", "/v1/chat/completions", `{` + hi + `, "top_p": 1.1}`, 400, "top_p", "top_p 1.1 is out of range"},
		{"presence_penalty", "/v1/chat/completions", `{` + hi + `, "presence_penalty": -3}`, 400, "presence_penalty", "presence_penalty -3 is out of range"},
		{"top_k beyond the vocabulary", "/v1/chat/completions", `{` + hi + `, "top_k": 5000}`, 400, "top_k", "top_k 5000 is out of range: expected an integer in [0, 1024]"},
		{"penalty_decay", "/v1/chat/completions", `{` + hi + `, "penalty_decay": 1.5}`, 400, "penalty_decay", "penalty_decay 1.5 is out of range"},
		{"unknown role", "/v1/chat/completions", `{"messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].role", `messages[0].role "tool" is not supported`},
		{"no role", "/v1/chat/completions", `{"messages":[{"content":"x"}]}`, 400, "messages[0].role", "messages[0] has no role"},
		{"user without content", "/v1/chat/completions", `{"messages":[{"role":"user"}]}`, 400, "messages[0].content", "messages[0] has no content"},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages[0].content", `type "image_url": only text parts`},
		{"last message not the user's", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, 400, "messages", "must be from the user"},
		{"system not first", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"},{"role":"user","content":"c"}]}`, 400, "messages", "a system message must come first"},
		{"five stop strings", "/v1/chat/completions", `{` + hi + `, "stop": ["a","b","c","d","e"]}`, 400, "stop", "at most 4"},
		{"empty stop string", "/v1/chat/completions", `{` + hi + `, "stop": ""}`, 400, "stop", "stop is an empty string"},
		{"stop of the wrong type", "/v1/chat/completions", `{` + hi + `, "stop": 3}`, 400, "stop", "expected a string or an array of strings"},
		{"unknown reasoning_effort", "/v1/chat/completions", `{` + hi + `, "reasoning_effort": "extreme"}`, 400, "reasoning_effort", `reasoning_effort "extreme": expected none, minimal, low, medium, high`},
		{"stream_options without stream", "/v1/chat/completions", `{` + hi + `, "stream_options": {"include_usage": true}}`, 400, "stream_options", "only allowed with stream: true"},
		{"tools", "/v1/chat/completions", `{` + hi + `, "tools": [{"type":"function","function":{"name":"f"}}]}`, 400, "tools", "tools (function calling) are not supported"},
		{"logprobs", "/v1/chat/completions", `{` + hi + `, "logprobs": true}`, 400, "logprobs", "logprobs are not supported"},
		{"prompt over the limit", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "messages", "more than this server's limit of 64"},
		{"completion without prompt", "/v1/completions", `{"max_tokens": 3}`, 400, "prompt", "prompt is missing"},
		{"completion with an empty prompt", "/v1/completions", `{"prompt": ""}`, 400, "prompt", "the prompt is empty"},
		{"completion token outside the vocabulary", "/v1/completions", `{"prompt": [1, 2, 99999]}`, 400, "prompt", "prompt token 99999 at position 2 is outside the vocabulary [0, 1024)"},
		{"two prompts", "/v1/completions", `{"prompt": ["a", "b"]}`, 400, "prompt", "prompt holds 2 prompts"},
		{"prompt of the wrong type", "/v1/completions", `{"prompt": {"text": "a"}}`, 400, "prompt", "expected a string, an array of token ids"},
		{"echo", "/v1/completions", `{"prompt": "a", "echo": true}`, 400, "echo", "echo is not supported"},
		{"body over the limit", "/v1/completions", `{"prompt": "` + strings.Repeat("a", 5000) + `"}`, 413, "", "larger than this server's limit of 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, body := s.post(t, c.path, c.body)
			require.Equal(t, c.status, code, body)
			e := decodeError(t, body)
			require.Equal(t, "invalid_request_error", e.Error.Type)
			require.Contains(t, e.Error.Message, c.message)
			if c.param != "" {
				require.NotNil(t, e.Error.Param, body)
				require.Equal(t, c.param, *e.Error.Param)
			}
		})
	}
	code, _, body := s.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"`+long+`"}]}`)
	require.Equal(t, 400, code)
	require.Equal(t, "context_length_exceeded", *decodeError(t, body).Error.Code)

	req, err := http.NewRequest(http.MethodGet, s.url+"/v1/chat/completions", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "POST", resp.Header.Get("Allow"))
	code, _, body = s.post(t, "/v2/nothing", `{}`)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, decodeError(t, body).Error.Message, "unknown endpoint POST /v2/nothing")

	// The server still answers, and counted the 400s.
	got, err := s.client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "tiny",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(3)})
	require.NoError(t, err)
	require.Len(t, got.Choices, 1)
	require.Contains(t, metricsText(t, s), `rwkv_requests_total{code="400",endpoint="/v1/chat/completions"}`)
}

func metricsText(t *testing.T, s *testServer) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestServeAPIKey: with an API key every endpoint but /health wants the
// bearer token: the OpenAI client with a wrong key gets a 401 error, with
// the right one an answer.
func TestServeAPIKey(t *testing.T) {
	e, tok := cpuBackend().open(t, 0)
	s := start(t, e, tok, serve.Options{APIKey: "sekrit"})
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "tiny", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(2)}

	_, err := s.client.Chat.Completions.New(ctx, params) // the client's key is "unused"
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "an API error, got %v", err)
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	require.Equal(t, "invalid_api_key", apiErr.Code)

	_, err = s.client.Models.List(ctx)
	require.True(t, errors.As(err, &apiErr), "models without the key: %v", err)
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)

	good := openai.NewClient(option.WithBaseURL(s.url+"/v1/"), option.WithAPIKey("sekrit"), option.WithMaxRetries(0))
	got, err := good.Chat.Completions.New(ctx, params)
	require.NoError(t, err)
	require.Len(t, got.Choices, 1)
	models, err := good.Models.List(ctx)
	require.NoError(t, err)
	require.Len(t, models.Data, 1)
	require.Equal(t, "tiny", models.Data[0].ID)

	for path, want := range map[string]int{"/health": 200, "/metrics": 401, "/v1/models": 401} {
		resp, err := http.Get(s.url + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, "%s without the key", path)
	}
	code, _, _ := s.post(t, "/v1/completions", `{"prompt":"a","max_tokens":1}`, "Authorization", "Bearer wrong")
	require.Equal(t, 401, code)
	code, _, _ = s.post(t, "/v1/completions", `{"prompt":"a","max_tokens":1}`, "Authorization", "Bearer sekrit")
	require.Equal(t, 200, code)
}

// TestServeCompletions: /v1/completions, plain and streamed, equals
// generate.Generate of the prompt (greedy and seeded, a stop string).
func TestServeCompletions(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e, tok := b.open(t, 2)
		const prompt = "The quick brown fox"
		greedy := completionReference(t, e, tok, prompt, model0(), 8)
		seeded := completionReference(t, e, tok, prompt, sampled(0.8, 0.9, 3), 8)
		s := start(t, e, tok, serve.Options{MaxBatch: 2})
		ctx := context.Background()
		for _, c := range []struct {
			name string
			want reference
			p    openai.CompletionNewParams
		}{
			{"greedy", greedy, openai.CompletionNewParams{Temperature: openai.Float(0)}},
			{"seeded", seeded, openai.CompletionNewParams{Temperature: openai.Float(0.8), TopP: openai.Float(0.9), Seed: openai.Int(3)}},
		} {
			p := c.p
			p.Model = "tiny"
			p.Prompt = openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)}
			p.MaxTokens = openai.Int(8)
			got, err := s.client.Completions.New(ctx, p)
			require.NoError(t, err, c.name)
			require.Equal(t, c.want.text, got.Choices[0].Text, "%s: tokens %v", c.name, c.want.tokens)
			require.EqualValues(t, c.want.finish, got.Choices[0].FinishReason)
			require.EqualValues(t, c.want.promptTokens, got.Usage.PromptTokens)
			require.EqualValues(t, len(c.want.tokens), got.Usage.CompletionTokens)

			stream := s.client.Completions.NewStreaming(ctx, p)
			var text strings.Builder
			for stream.Next() {
				if ch := stream.Current(); len(ch.Choices) > 0 {
					text.WriteString(ch.Choices[0].Text)
				}
			}
			require.NoError(t, stream.Err())
			require.Equal(t, c.want.text, text.String(), "%s streamed", c.name)
		}
	})
}

func model0() model.Sampling { return sampled(0, 1, 0) }

// TestServeReasoningEffort: reasoning_effort picks the G-series think
// mode: the prompt is ChatOptions.Prompt with the mode and suffix of the
// README's table (prompt_tokens), and in reasoning mode the text the model
// writes after "<think" comes back as reasoning_content, the ">" closing
// the tag dropped.
func TestServeReasoningEffort(t *testing.T) {
	e, tok := cpuBackend().open(t, 0)
	msgs := []generate.Message{{Role: generate.RoleUser, Content: "Why is the sky blue?"}}
	modes := map[string]generate.ChatOptions{
		"none":   {Think: generate.ThinkFast},
		"low":    {Think: generate.ThinkOn, Effort: generate.EffortBit},
		"medium": {Think: generate.ThinkOn, Effort: generate.EffortThink},
		"high":   {Think: generate.ThinkOn, Effort: generate.EffortLot},
	}
	refs := map[string]reference{}
	for effort, o := range modes {
		refs[effort] = chatReference(t, e, tok, o, msgs, model0(), 6)
	}
	s := start(t, e, tok, serve.Options{})
	checked := 0
	for effort, o := range modes {
		got, err := s.client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "tiny",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(msgs[0].Content)}, MaxTokens: openai.Int(6),
			Temperature: openai.Float(0), ReasoningEffort: shared.ReasoningEffort(effort)})
		require.NoError(t, err, effort)
		want := refs[effort]
		require.EqualValues(t, want.promptTokens, got.Usage.PromptTokens, "%s: the prompt of %+v", effort, o)
		raw := strings.TrimLeft(strings.TrimPrefix(want.text, ">"), " \n")
		switch {
		case o.Think == generate.ThinkFast:
			require.Equal(t, raw, got.Choices[0].Message.Content, "%s: the answer after the empty think block", effort)
		case !strings.Contains(raw, "</think>"):
			reasoning := got.Choices[0].Message.JSON.ExtraFields["reasoning_content"].Raw()
			require.JSONEq(t, mustJSON(t, raw), reasoning, "%s: reasoning_content", effort)
			require.Empty(t, got.Choices[0].Message.Content, "%s: no answer before </think>", effort)
			checked++
		}
	}
	require.Positive(t, checked, "some reasoning checked")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestServeKeepAliveOutlivesWriteDeadline: the deadline each write of a
// response gets does not stay on the connection: a kept-alive connection
// used again after it answers.
func TestServeKeepAliveOutlivesWriteDeadline(t *testing.T) {
	e, tok := cpuBackend().open(t, 0)
	s := start(t, e, tok, serve.Options{WriteTimeout: 100 * time.Millisecond})
	for i, body := range []string{
		`{"prompt":"a","max_tokens":2,"stream":true}`, `{"prompt":"a","max_tokens":2,"stream":true}`,
		`{"prompt":"a","max_tokens":2}`, `{"prompt":"a","max_tokens":2}`,
	} {
		code, _, resp := s.post(t, "/v1/completions", body)
		require.Equal(t, 200, code, "request %d: %s", i, resp)
		time.Sleep(300 * time.Millisecond) // past the last write's deadline
	}
}
