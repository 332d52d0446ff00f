package serve_test

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/serve"
)

// chatCase is one chat request of the tests, in both forms: the client's
// parameters and the reference's.
type chatCase struct {
	name        string
	msgs        []generate.Message
	temperature float64
	topP        float64
	seed        int64
	maxTokens   int
}

func (c chatCase) params() openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: "tiny", MaxTokens: openai.Int(int64(c.maxTokens)),
		Temperature: openai.Float(c.temperature), TopP: openai.Float(c.topP), Seed: openai.Int(c.seed)}
	for _, m := range c.msgs {
		switch m.Role {
		case generate.RoleSystem:
			p.Messages = append(p.Messages, openai.SystemMessage(m.Content))
		case generate.RoleUser:
			p.Messages = append(p.Messages, openai.UserMessage(m.Content))
		case generate.RoleAssistant:
			p.Messages = append(p.Messages, openai.AssistantMessage(m.Content))
		}
	}
	return p
}

func (c chatCase) sampling() model.Sampling { return sampled(c.temperature, c.topP, c.seed) }

var basicChats = []chatCase{
	{name: "greedy", msgs: []generate.Message{{Role: generate.RoleSystem, Content: "You are terse."}, {Role: generate.RoleUser, Content: "Tell me about cats."}},
		temperature: 0, topP: 1, seed: 1, maxTokens: 8},
	{name: "seeded", msgs: []generate.Message{{Role: generate.RoleUser, Content: "Write a line of verse."}},
		temperature: 1, topP: 0.9, seed: 42, maxTokens: 8},
}

// TestServeChat: plain and streamed chat completions through the official
// OpenAI client equal one generate.Generate of the same prompt (greedy
// and seeded), with the usage counted; include_usage adds the usage chunk.
func TestServeChat(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e, tok := b.open(t, 4)
		refs := make([]reference, len(basicChats))
		for i, c := range basicChats {
			refs[i] = chatReference(t, e, tok, generate.ChatOptions{}, c.msgs, c.sampling(), c.maxTokens)
		}
		s := start(t, e, tok, serve.Options{MaxBatch: 2, CacheEntries: 0})
		ctx := context.Background()
		for i, c := range basicChats {
			want := refs[i]
			t.Run(c.name, func(t *testing.T) {
				got, err := s.client.Chat.Completions.New(ctx, c.params())
				require.NoError(t, err)
				require.Len(t, got.Choices, 1)
				require.Equal(t, want.text, got.Choices[0].Message.Content, "plain: content (reference tokens %v)", want.tokens)
				require.Equal(t, want.finish, got.Choices[0].FinishReason)
				require.Equal(t, "chat.completion", string(got.Object))
				require.EqualValues(t, want.promptTokens, got.Usage.PromptTokens)
				require.EqualValues(t, len(want.tokens), got.Usage.CompletionTokens)
				require.EqualValues(t, want.promptTokens+len(want.tokens), got.Usage.TotalTokens)
				require.EqualValues(t, 0, got.Usage.PromptTokensDetails.CachedTokens, "no cache")

				p := c.params()
				p.StreamOptions.IncludeUsage = openai.Bool(true)
				stream := s.client.Chat.Completions.NewStreaming(ctx, p)
				var text strings.Builder
				var finish string
				var usage *openai.CompletionUsage
				chunks := 0
				for stream.Next() {
					ch := stream.Current()
					chunks++
					if len(ch.Choices) == 0 {
						u := ch.Usage
						usage = &u
						continue
					}
					text.WriteString(ch.Choices[0].Delta.Content)
					if ch.Choices[0].FinishReason != "" {
						finish = ch.Choices[0].FinishReason
					}
				}
				require.NoError(t, stream.Err())
				require.Equal(t, want.text, text.String(), "streamed content")
				require.Equal(t, want.finish, finish)
				require.NotNil(t, usage, "include_usage: a last chunk with the usage")
				require.EqualValues(t, want.promptTokens, usage.PromptTokens)
				require.EqualValues(t, len(want.tokens), usage.CompletionTokens)
				require.Greater(t, chunks, 2, "a stream of chunks, not one")
			})
		}
	})
}
