package serve

import "encoding/json"

// This file holds the JSON shapes of the OpenAI API that the server reads
// and writes. Optional request fields are pointers so that "absent" and
// "zero" differ; fields whose type varies (content, stop, prompt) are kept
// raw and decoded by parse.go.

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	Seed                *int64          `json:"seed"`
	N                   *int            `json:"n"`
	Stream              *bool           `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	ReasoningEffort     *string         `json:"reasoning_effort"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	Tools               json.RawMessage `json:"tools"`
	Functions           json.RawMessage `json:"functions"`
	ResponseFormat      *responseFormat `json:"response_format"`
	// RWKV's own sampler knobs, accepted as extra fields.
	TopK         *int     `json:"top_k"`
	PenaltyDecay *float64 `json:"penalty_decay"`
	// IgnoreEOS (vLLM's extension) keeps generating after token 0.
	IgnoreEOS *bool `json:"ignore_eos"`
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	Model            string          `json:"model"`
	Prompt           json.RawMessage `json:"prompt"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	MaxTokens        *int            `json:"max_tokens"`
	Stop             json.RawMessage `json:"stop"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Seed             *int64          `json:"seed"`
	N                *int            `json:"n"`
	BestOf           *int            `json:"best_of"`
	Stream           *bool           `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	Echo             *bool           `json:"echo"`
	Suffix           *string         `json:"suffix"`
	Logprobs         *int            `json:"logprobs"`
	TopK             *int            `json:"top_k"`
	PenaltyDecay     *float64        `json:"penalty_decay"`
	IgnoreEOS        *bool           `json:"ignore_eos"`
}

// streamOptions are the options of a streamed response.
type streamOptions struct {
	// IncludeUsage adds a last chunk with the usage and no choices.
	IncludeUsage bool `json:"include_usage"`
	// ContinuousUsageStats (vLLM's extension) puts the usage so far in
	// every chunk; the load test uses it to count tokens per chunk.
	ContinuousUsageStats bool `json:"continuous_usage_stats"`
}

// responseFormat is accepted only as {"type": "text"}.
type responseFormat struct {
	Type string `json:"type"`
}

// chatMessage is one message of a chat request. Content is a string, an
// array of content parts ({"type": "text", "text": ...}) or null.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

// contentPart is one element of an array content.
type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// usage counts the tokens of a request.
type usage struct {
	PromptTokens        int          `json:"prompt_tokens"`
	CompletionTokens    int          `json:"completion_tokens"`
	TotalTokens         int          `json:"total_tokens"`
	PromptTokensDetails promptDetail `json:"prompt_tokens_details"`
}

// promptDetail says how many prompt tokens came from the prefix cache.
type promptDetail struct {
	CachedTokens int `json:"cached_tokens"`
}

// chatCompletion is the response of a non-streamed chat request.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage"`
}

type chatChoice struct {
	Index        int            `json:"index"`
	Message      chatOutMessage `json:"message"`
	FinishReason string         `json:"finish_reason"`
	Logprobs     *struct{}      `json:"logprobs"`
}

// chatOutMessage is the assistant's answer. ReasoningContent (the text of
// the reasoning block in reasoning mode) follows DeepSeek's and llama.cpp's
// servers.
type chatOutMessage struct {
	Role             string  `json:"role"`
	Content          string  `json:"content"`
	ReasoningContent string  `json:"reasoning_content,omitempty"`
	Refusal          *string `json:"refusal"`
}

// chatChunk is one server-sent event of a streamed chat response.
type chatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *struct{} `json:"logprobs"`
}

type chatDelta struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
}

// completion is the response (and, streamed, each chunk) of
// POST /v1/completions.
type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *struct{} `json:"logprobs"`
}

// modelList is the response of GET /v1/models.
type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}
