package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// jobSpec is a validated request: what the scheduler runs and how the
// handler answers.
type jobSpec struct {
	prompt    []int
	sampling  model.Sampling
	maxTokens int
	stop      generate.StopRules
	streamOpt generate.StreamOptions
	// think is the chat's think mode (shapes the answer into reasoning and
	// content); ThinkOff for completions.
	think generate.Think
	// stream asks for server-sent events; includeUsage for a last chunk
	// with the usage, continuousUsage for the usage in every chunk.
	stream, includeUsage, continuousUsage bool
}

// parser turns request bodies into jobSpecs.
type parser struct {
	tok   *tokenizer.Tokenizer
	vocab int
	// maxPrompt and maxCompletion bound the prompt and max_tokens;
	// defaultCompletion is the chat's max_tokens when absent.
	maxPrompt, maxCompletion, defaultCompletion int
	// seed picks the seed of a request that gives none.
	seed func() uint64
}

// Limits of the OpenAI sampling fields.
const (
	maxOpenAITemperature = 2
	maxOpenAIPenalty     = 2
	maxStopStrings       = 4
	// defaultPenaltyDecay is RWKV's (model.Preset "chat").
	defaultPenaltyDecay = 0.996
	// completionDefaultTokens is OpenAI's max_tokens default for
	// /v1/completions.
	completionDefaultTokens = 16
)

// decodeBody decodes one JSON object into v, naming the field of a type
// error and the offset of a syntax error.
func decodeBody(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "the request body is empty: expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	err := dec.Decode(v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &syn):
		return badRequest("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ) && typ.Field == "":
		return badRequest("", "the request body must be a JSON object, not %s", typ.Value)
	case errors.As(err, &typ):
		return badRequest(typ.Field, "field %q: expected %s, got %s", typ.Field, jsonKind(typ.Type), typ.Value)
	default:
		return badRequest("", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "unexpected data after the JSON object")
	}
	return nil
}

// jsonKind names a Go type in JSON's terms.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// samplingFields are the sampler's request fields, shared by both
// endpoints.
type samplingFields struct {
	temperature, topP, presence, frequency, penaltyDecay *float64
	topK                                                 *int
	seed                                                 *int64
}

// sampling checks the fields against OpenAI's ranges (RWKV's for top_k and
// penalty_decay) and fills in the defaults: temperature 1, top_p 1, no
// penalties, penalty_decay 0.996, a random seed.
func (p *parser) sampling(f samplingFields) (model.Sampling, *apiError) {
	s := model.Sampling{Temperature: 1, TopP: 1, PenaltyDecay: defaultPenaltyDecay}
	in := func(name string, v *float64, lo, hi float64, dst *float32) *apiError {
		if v == nil {
			return nil
		}
		if math.IsNaN(*v) || *v < lo || *v > hi {
			return badRequest(name, "%s %v is out of range: expected a number in [%v, %v]", name, *v, lo, hi)
		}
		*dst = float32(*v)
		return nil
	}
	if e := in("temperature", f.temperature, 0, maxOpenAITemperature, &s.Temperature); e != nil {
		return s, e
	}
	if s.Temperature < model.MinTemperature {
		s.Temperature = 0 // below the sampler's least temperature: greedy
	}
	if e := in("top_p", f.topP, 0, 1, &s.TopP); e != nil {
		return s, e
	}
	if e := in("presence_penalty", f.presence, -maxOpenAIPenalty, maxOpenAIPenalty, &s.PresencePenalty); e != nil {
		return s, e
	}
	if e := in("frequency_penalty", f.frequency, -maxOpenAIPenalty, maxOpenAIPenalty, &s.FrequencyPenalty); e != nil {
		return s, e
	}
	if e := in("penalty_decay", f.penaltyDecay, 0, 1, &s.PenaltyDecay); e != nil {
		return s, e
	}
	if f.topK != nil {
		if *f.topK < 0 || *f.topK > p.vocab {
			return s, badRequest("top_k", "top_k %d is out of range: expected an integer in [0, %d] (0 = off)", *f.topK, p.vocab)
		}
		s.TopK = *f.topK
	}
	if f.seed != nil {
		s.Seed = uint64(*f.seed)
	} else if p.seed != nil {
		s.Seed = p.seed()
	}
	if err := s.Validate(p.vocab); err != nil {
		return s, badRequest("", "%v", err)
	}
	return s, nil
}

// maxTokens checks a max_tokens value (name is the field) or returns def.
func (p *parser) maxTokens(name string, v *int, def int) (int, *apiError) {
	if v == nil {
		return min(def, p.maxCompletion), nil
	}
	if *v < 1 || *v > p.maxCompletion {
		return 0, badRequest(name, "%s %d is out of range: expected an integer in [1, %d]", name, *v, p.maxCompletion)
	}
	return *v, nil
}

// stopStrings reads "stop": null, a string, or an array of up to four
// non-empty strings.
func stopStrings(raw json.RawMessage) ([]string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, badRequest("stop", "stop is an empty string: expected a non-empty string or an array of them")
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, badRequest("stop", "stop: expected a string or an array of strings, got %s", abbreviate(raw))
	}
	if len(many) > maxStopStrings {
		return nil, badRequest("stop", "stop has %d strings: at most %d are allowed", len(many), maxStopStrings)
	}
	for i, s := range many {
		if s == "" {
			return nil, badRequest("stop", "stop[%d] is an empty string", i)
		}
	}
	return many, nil
}

// abbreviate shortens raw JSON for a message.
func abbreviate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}

// common checks the fields both endpoints share and reject: n, streaming
// options.
func checkN(n *int) *apiError {
	if n != nil && *n != 1 {
		return badRequest("n", "n %d is not supported: this server returns exactly one choice (n = 1)", *n)
	}
	return nil
}

// streamFlags reads stream and stream_options.
func streamFlags(spec *jobSpec, stream *bool, opt *streamOptions) *apiError {
	spec.stream = stream != nil && *stream
	if opt != nil {
		if !spec.stream {
			return badRequest("stream_options", "stream_options is only allowed with stream: true")
		}
		spec.includeUsage, spec.continuousUsage = opt.IncludeUsage, opt.ContinuousUsageStats
	}
	return nil
}

// effortModes maps reasoning_effort to the G-series think mode and the
// think-length suffix on the last user message.
var effortModes = map[string]generate.ChatOptions{
	"none":    {Think: generate.ThinkFast},
	"minimal": {Think: generate.ThinkFast},
	"low":     {Think: generate.ThinkOn, Effort: generate.EffortBit},
	"medium":  {Think: generate.ThinkOn, Effort: generate.EffortThink},
	"high":    {Think: generate.ThinkOn, Effort: generate.EffortLot},
	"xhigh":   {Think: generate.ThinkOn, Effort: generate.EffortLot},
	"max":     {Think: generate.ThinkOn, Effort: generate.EffortLot},
}

// chat validates a chat request.
func (p *parser) chat(body []byte) (*jobSpec, *apiError) {
	var r chatRequest
	if e := decodeBody(body, &r); e != nil {
		return nil, e
	}
	if e := checkN(r.N); e != nil {
		return nil, e
	}
	switch {
	case r.Logprobs != nil && *r.Logprobs, r.TopLogprobs != nil:
		return nil, badRequest("logprobs", "logprobs are not supported by this server")
	case len(r.Tools) > 0 && string(r.Tools) != "null" && string(r.Tools) != "[]":
		return nil, badRequest("tools", "tools (function calling) are not supported by this server")
	case len(r.Functions) > 0 && string(r.Functions) != "null" && string(r.Functions) != "[]":
		return nil, badRequest("functions", "functions (function calling) are not supported by this server")
	case r.ResponseFormat != nil && r.ResponseFormat.Type != "text":
		return nil, badRequest("response_format", "response_format %q is not supported: only \"text\"", r.ResponseFormat.Type)
	}
	spec := &jobSpec{}
	if e := streamFlags(spec, r.Stream, r.StreamOptions); e != nil {
		return nil, e
	}
	var opts generate.ChatOptions
	if r.ReasoningEffort != nil {
		o, ok := effortModes[*r.ReasoningEffort]
		if !ok {
			return nil, badRequest("reasoning_effort", "reasoning_effort %q: expected none, minimal, low, medium, high, xhigh or max", *r.ReasoningEffort)
		}
		opts = o
	}
	msgs, e := chatMessages(r.Messages)
	if e != nil {
		return nil, e
	}
	text, err := opts.Prompt(msgs)
	if err != nil {
		return nil, badRequest("messages", "%s", strings.TrimPrefix(err.Error(), "generate: "))
	}
	if spec.prompt, e = p.encode(chatSegments(text)); e != nil {
		return nil, e
	}
	max := r.MaxTokens
	name := "max_tokens"
	if r.MaxCompletionTokens != nil {
		max, name = r.MaxCompletionTokens, "max_completion_tokens"
	}
	if spec.maxTokens, e = p.maxTokens(name, max, p.defaultCompletion); e != nil {
		return nil, e
	}
	if spec.sampling, e = p.sampling(samplingFields{r.Temperature, r.TopP, r.PresencePenalty, r.FrequencyPenalty, r.PenaltyDecay, r.TopK, r.Seed}); e != nil {
		return nil, e
	}
	stops, e := stopStrings(r.Stop)
	if e != nil {
		return nil, e
	}
	spec.stop = opts.StopRules()
	spec.stop.Strings = append(spec.stop.Strings, stops...)
	spec.stop.IgnoreEOS = r.IgnoreEOS != nil && *r.IgnoreEOS
	spec.think = opts.Think
	spec.streamOpt.TrimLeadingSpace = opts.Think == generate.ThinkOff
	return spec, nil
}

// chatMessages reads the messages: roles system (or developer), user and
// assistant, content a string, text parts or (assistant only) null.
func chatMessages(in []chatMessage) ([]generate.Message, *apiError) {
	if len(in) == 0 {
		return nil, badRequest("messages", "messages is empty: expected at least one message")
	}
	out := make([]generate.Message, len(in))
	for i, m := range in {
		param := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "developer":
			out[i].Role = generate.RoleSystem
		case "user":
			out[i].Role = generate.RoleUser
		case "assistant":
			out[i].Role = generate.RoleAssistant
		case "":
			return nil, badRequest(param+".role", "%s has no role: expected system, developer, user or assistant", param)
		default:
			return nil, badRequest(param+".role", "%s.role %q is not supported: expected system, developer, user or assistant", param, m.Role)
		}
		text, e := messageText(param, m.Content, out[i].Role == generate.RoleAssistant)
		if e != nil {
			return nil, e
		}
		out[i].Content = text
	}
	return out, nil
}

// messageText reads a message's content.
func messageText(param string, raw json.RawMessage, nullOK bool) (string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if nullOK {
			return "", nil
		}
		return "", badRequest(param+".content", "%s has no content", param)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badRequest(param+".content", "%s.content: expected a string or an array of text parts, got %s", param, abbreviate(raw))
	}
	texts := make([]string, len(parts))
	for j, part := range parts {
		if part.Type != "text" {
			return "", badRequest(param+".content", "%s.content[%d] has type %q: only text parts are supported", param, j, part.Type)
		}
		texts[j] = part.Text
	}
	return strings.Join(texts, "\n"), nil
}

// chatSegments cuts a G-series prompt where the tokenizer must not merge
// across: after every blank line (in the RWKV form a blank line only ends
// a message, since messages are cleaned of them) and after each
// "Assistant:" label. Encoding the segments one by one makes the tokens of
// a conversation's prompt a prefix of the tokens of its continuation (the
// prompt cache relies on it), and the tokens of a previous answer those a
// model generating the same text would have produced after the label.
func chatSegments(text string) []string {
	var out []string
	for _, part := range strings.SplitAfter(text, generate.EndOfTurn) {
		if rest, ok := strings.CutPrefix(part, assistantLabel); ok {
			out = append(out, assistantLabel)
			part = rest
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

const assistantLabel = "Assistant:"

// encode tokenizes segments one after the other and checks the length.
func (p *parser) encode(segments []string) ([]int, *apiError) {
	var ids []int
	for _, s := range segments {
		var err error
		if ids, err = p.tok.AppendEncode(ids, []byte(s)); err != nil {
			return nil, badRequest("", "the prompt cannot be tokenized: %v", err)
		}
	}
	return ids, p.checkPromptLen(ids)
}

// checkPromptLen refuses an empty prompt or one over the limit.
func (p *parser) checkPromptLen(ids []int) *apiError {
	if len(ids) == 0 {
		return badRequest("prompt", "the prompt is empty")
	}
	if len(ids) > p.maxPrompt {
		e := badRequest("messages", "the prompt has %d tokens, more than this server's limit of %d", len(ids), p.maxPrompt)
		e.Code = "context_length_exceeded"
		return e
	}
	return nil
}

// completion validates a completions request.
func (p *parser) completion(body []byte) (*jobSpec, *apiError) {
	var r completionRequest
	if e := decodeBody(body, &r); e != nil {
		return nil, e
	}
	if e := checkN(r.N); e != nil {
		return nil, e
	}
	switch {
	case r.BestOf != nil && *r.BestOf != 1:
		return nil, badRequest("best_of", "best_of %d is not supported: expected 1", *r.BestOf)
	case r.Echo != nil && *r.Echo:
		return nil, badRequest("echo", "echo is not supported by this server")
	case r.Suffix != nil && *r.Suffix != "":
		return nil, badRequest("suffix", "suffix is not supported by this server")
	case r.Logprobs != nil:
		return nil, badRequest("logprobs", "logprobs are not supported by this server")
	}
	spec := &jobSpec{}
	if e := streamFlags(spec, r.Stream, r.StreamOptions); e != nil {
		return nil, e
	}
	var e *apiError
	if spec.prompt, e = p.completionPrompt(r.Prompt); e != nil {
		return nil, e
	}
	if spec.maxTokens, e = p.maxTokens("max_tokens", r.MaxTokens, completionDefaultTokens); e != nil {
		return nil, e
	}
	if spec.sampling, e = p.sampling(samplingFields{r.Temperature, r.TopP, r.PresencePenalty, r.FrequencyPenalty, r.PenaltyDecay, r.TopK, r.Seed}); e != nil {
		return nil, e
	}
	if spec.stop.Strings, e = stopStrings(r.Stop); e != nil {
		return nil, e
	}
	spec.stop.IgnoreEOS = r.IgnoreEOS != nil && *r.IgnoreEOS
	return spec, nil
}

// completionPrompt reads a prompt given as a string, token ids, or an
// array holding exactly one of those.
func (p *parser) completionPrompt(raw json.RawMessage) ([]int, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("prompt", "prompt is missing: expected a string or an array of token ids")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if text == "" {
			return nil, badRequest("prompt", "the prompt is empty")
		}
		return p.encode([]string{text})
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return p.checkIDs(ids)
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil, badRequest("prompt", "prompt: expected a string, an array of token ids or an array of one of those, got %s", abbreviate(raw))
	}
	if len(list) != 1 {
		return nil, badRequest("prompt", "prompt holds %d prompts: this server takes one per request", len(list))
	}
	if json.Unmarshal(list[0], &text) == nil {
		if text == "" {
			return nil, badRequest("prompt", "the prompt is empty")
		}
		return p.encode([]string{text})
	}
	if json.Unmarshal(list[0], &ids) == nil {
		return p.checkIDs(ids)
	}
	return nil, badRequest("prompt", "prompt[0]: expected a string or an array of token ids, got %s", abbreviate(list[0]))
}

// checkIDs checks prompt token ids against the vocabulary.
func (p *parser) checkIDs(ids []int) ([]int, *apiError) {
	for i, id := range ids {
		if id < 0 || id >= p.vocab {
			return nil, badRequest("prompt", "prompt token %d at position %d is outside the vocabulary [0, %d)", id, i, p.vocab)
		}
	}
	return ids, p.checkPromptLen(ids)
}
