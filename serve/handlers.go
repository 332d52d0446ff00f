package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
)

// routes builds the handler: every endpoint behind the method check, the
// API key (but /health) and the request counter.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	metricsHandler := promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{})
	endpoints := []struct {
		path, method string
		open         bool // no API key needed
		h            http.HandlerFunc
	}{
		{"/v1/chat/completions", http.MethodPost, false, s.chatCompletions},
		{"/v1/completions", http.MethodPost, false, s.completions},
		{"/v1/models", http.MethodGet, false, s.models},
		{"/v1/models/{id}", http.MethodGet, false, s.model},
		{"/health", http.MethodGet, true, s.health},
		{"/metrics", http.MethodGet, false, metricsHandler.ServeHTTP},
	}
	for _, ep := range endpoints {
		mux.Handle(ep.path, s.wrap(ep.path, ep.method, ep.open, ep.h))
	}
	mux.Handle("/", s.wrap("other", "", false, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "not_found",
			Message: fmt.Sprintf("unknown endpoint %s %s", r.Method, r.URL.Path)})
	}))
	return mux
}

// statusRecorder remembers the status code for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and write deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// wrap checks the method and the API key and counts the request.
func (s *Server) wrap(endpoint, method string, open bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			s.m.requests.WithLabelValues(endpoint, strconv.Itoa(max(rec.code, http.StatusOK))).Inc()
		}()
		if !open && !s.authorized(r) {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="rwkv"`)
			writeError(rec, &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest, Code: "invalid_api_key",
				Message: "missing or incorrect API key: send the header Authorization: Bearer KEY"})
			return
		}
		if method != "" && r.Method != method {
			rec.Header().Set("Allow", method)
			writeError(rec, &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest,
				Message: fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, method)})
			return
		}
		h(rec, r)
	})
}

// authorized checks the bearer token in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.opt.APIKey == "" {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.opt.APIKey)) == 1
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) modelInfo() modelInfo {
	return modelInfo{ID: s.opt.ModelName, Object: "model", Created: s.created, OwnedBy: "rwkv-gpu"}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: []modelInfo{s.modelInfo()}})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.opt.ModelName {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("the model %q does not exist: this server has %q", id, s.opt.ModelName)})
		return
	}
	writeJSON(w, http.StatusOK, s.modelInfo())
}

// readBody reads the request body up to the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest,
			Message: fmt.Sprintf("the request body is larger than this server's limit of %d bytes", tooBig.Limit)}
	case err != nil:
		return nil, badRequest("", "reading the request body: %v", err)
	}
	return body, nil
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e == nil {
		var spec *jobSpec
		if spec, e = s.parse.chat(body); e == nil {
			s.answer(w, r, spec, &chatWriter{s: s, id: newID("chatcmpl-"), shaper: newReplyShaper(spec.think)})
			return
		}
	}
	writeError(w, e)
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e == nil {
		var spec *jobSpec
		if spec, e = s.parse.completion(body); e == nil {
			s.answer(w, r, spec, &completionWriter{s: s, id: newID("cmpl-")})
			return
		}
	}
	writeError(w, e)
}

// responder shapes the answer of one endpoint.
type responder interface {
	// start is the first chunk of a stream (nil: none).
	start() any
	// delta is the chunk of a stream carrying new text (nil: nothing to
	// send yet).
	delta(text string, u *usage) any
	// end is the last chunk of a stream with the finish reason (the text
	// held back first).
	end(finish string, u *usage) []any
	// whole is the response of an unstreamed request.
	whole(text, finish string, u usage) any
}

// answer queues the job and writes its answer, streamed or whole.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, spec *jobSpec, out responder) {
	j := newJob(r.Context(), spec)
	if e := s.sched.submit(j); e != nil {
		writeError(w, e)
		return
	}
	if spec.stream {
		s.stream(w, r.Context(), j, out)
		return
	}
	var text strings.Builder
	res, err := follow(r.Context(), j, func(t string, _ int) error { text.WriteString(t); return nil })
	if err != nil {
		return // the client has gone; the scheduler cancels the job
	}
	rc := http.NewResponseController(w)
	// net/http lifts the deadline once the response is flushed.
	_ = rc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
	if res.err != nil {
		writeError(w, res.err)
		return
	}
	writeJSON(w, http.StatusOK, out.whole(text.String(), finishReason(res.finish), res.usage()))
}

// follow waits for the job's text, handing each new part to emit with the
// number of tokens generated so far, until the job ends or ctx is done.
func follow(ctx context.Context, j *job, emit func(text string, tokens int) error) (outcome, error) {
	for {
		select {
		case <-j.notify:
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		}
		pieces, tokens, done, out := j.take()
		if len(pieces) > 0 {
			if err := emit(strings.Join(pieces, ""), tokens); err != nil {
				return out, err
			}
		}
		if done {
			return out, nil
		}
	}
}

func (o outcome) usage() usage {
	return usage{PromptTokens: o.promptTokens, CompletionTokens: o.completionTokens, TotalTokens: o.promptTokens + o.completionTokens,
		PromptTokensDetails: promptDetail{CachedTokens: o.cachedTokens}}
}

// finishReason is OpenAI's finish_reason for a generation's end.
func finishReason(f generate.Finish) string {
	if f == generate.FinishLength {
		return "length"
	}
	return "stop"
}

// stream writes the answer as server-sent events. The usage rides in the
// last chunk (include_usage) or in every chunk (continuous_usage_stats).
func (s *Server) stream(w http.ResponseWriter, ctx context.Context, j *job, out responder) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if first := out.start(); first != nil {
		if send(first) != nil {
			return
		}
	}
	promptTokens := len(j.spec.prompt)
	res, err := follow(ctx, j, func(text string, tokens int) error {
		var u *usage
		if j.spec.continuousUsage {
			u = &usage{PromptTokens: promptTokens, CompletionTokens: tokens, TotalTokens: promptTokens + tokens}
		}
		if c := out.delta(text, u); c != nil {
			return send(c)
		}
		return nil
	})
	if err != nil {
		return // the client has gone or stopped reading: the job is cancelled
	}
	if res.err != nil {
		_ = send(errorBody{Error: res.err})
		return
	}
	u := res.usage()
	var last *usage
	if j.spec.continuousUsage {
		last = &u
	}
	for _, c := range out.end(finishReason(res.finish), last) {
		if send(c) != nil {
			return
		}
	}
	if j.spec.includeUsage {
		if send(out.whole("", "", u)) != nil {
			return
		}
	}
	_ = rc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err == nil {
		_ = rc.Flush()
	}
}

// newID returns prefix and 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// chatWriter shapes chat completions.
type chatWriter struct {
	s      *Server
	id     string
	shaper *replyShaper
	// In a stream, whole is called only for the usage chunk.
	streamed bool
}

func (c *chatWriter) chunk(d chatDelta, finish *string, u *usage) chatChunk {
	return chatChunk{ID: c.id, Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: c.s.opt.ModelName,
		Choices: []chunkChoice{{Delta: d, FinishReason: finish}}, Usage: u}
}

func (c *chatWriter) start() any {
	c.streamed = true
	empty := ""
	return c.chunk(chatDelta{Role: "assistant", Content: &empty}, nil, nil)
}

// deltaOf is the delta carrying reasoning and content (nil when both are
// empty).
func deltaOf(reasoning, content string) *chatDelta {
	if reasoning == "" && content == "" {
		return nil
	}
	var d chatDelta
	if reasoning != "" {
		d.ReasoningContent = &reasoning
	}
	if content != "" {
		d.Content = &content
	}
	return &d
}

func (c *chatWriter) delta(text string, u *usage) any {
	if d := deltaOf(c.shaper.add(text)); d != nil {
		return c.chunk(*d, nil, u)
	}
	return nil
}

func (c *chatWriter) end(finish string, u *usage) []any {
	var out []any
	if d := deltaOf(c.shaper.finish()); d != nil {
		out = append(out, c.chunk(*d, nil, nil))
	}
	return append(out, c.chunk(chatDelta{}, &finish, u))
}

func (c *chatWriter) whole(text, finish string, u usage) any {
	if c.streamed {
		ch := c.chunk(chatDelta{}, nil, &u)
		ch.Choices = []chunkChoice{}
		return ch
	}
	r1, c1 := c.shaper.add(text)
	r2, c2 := c.shaper.finish()
	return chatCompletion{ID: c.id, Object: "chat.completion", Created: time.Now().Unix(), Model: c.s.opt.ModelName, Usage: &u,
		Choices: []chatChoice{{Message: chatOutMessage{Role: "assistant", Content: c1 + c2, ReasoningContent: r1 + r2}, FinishReason: finish}}}
}

// completionWriter shapes text completions.
type completionWriter struct {
	s        *Server
	id       string
	streamed bool
}

func (c *completionWriter) response(text string, finish *string, u *usage) completion {
	return completion{ID: c.id, Object: "text_completion", Created: time.Now().Unix(), Model: c.s.opt.ModelName,
		Choices: []completionChoice{{Text: text, FinishReason: finish}}, Usage: u}
}

func (c *completionWriter) start() any {
	c.streamed = true
	return nil
}

func (c *completionWriter) delta(text string, u *usage) any { return c.response(text, nil, u) }

func (c *completionWriter) end(finish string, u *usage) []any {
	return []any{c.response("", &finish, u)}
}

func (c *completionWriter) whole(text, finish string, u usage) any {
	if c.streamed {
		r := c.response("", nil, &u)
		r.Choices = []completionChoice{}
		return r
	}
	return c.response(text, &finish, &u)
}
