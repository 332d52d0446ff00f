package serve

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// Options configure a Server. Zero fields take the defaults named.
type Options struct {
	// ModelName is the model's id in /v1/models and in responses
	// (default "rwkv"). Requests may name any model: the server has one.
	ModelName string
	// MaxBatch is the most sequences generated together (default 8).
	MaxBatch int
	// QueueSize is the most requests waiting for a place in the batch;
	// more are refused with 429 (default 64).
	QueueSize int
	// CacheEntries is the most states the prefix cache keeps (0: no
	// cache). Each holds an engine state slot: the engine needs MaxBatch
	// + CacheEntries of them (Slots).
	CacheEntries int
	// StateBytes is the device memory of one cached state, for the
	// cache_bytes metric (default: the model's state, model.Config.StateBytes).
	StateBytes int64
	// PrefillBudget bounds the prompt tokens fed per step across all
	// requests (default 64), so that long prompts do not stall streams.
	PrefillBudget int
	// MaxPromptTokens bounds a prompt (default 16384).
	MaxPromptTokens int
	// MaxCompletionTokens bounds max_tokens (default 4096).
	MaxCompletionTokens int
	// DefaultMaxTokens is a chat request's max_tokens when it gives none
	// (default 1024; completions default to OpenAI's 16).
	DefaultMaxTokens int
	// MaxBodyBytes bounds a request body (default 4 MiB).
	MaxBodyBytes int64
	// WriteTimeout bounds each write to a client (default 30 s): a client
	// that stops reading is dropped and its generation cancelled.
	WriteTimeout time.Duration
	// APIKey, when set, is the bearer token every endpoint but /health
	// requires.
	APIKey string
	// Log receives the server's own messages (engine errors); nil is
	// quiet.
	Log io.Writer
}

// Slots is the number of engine state slots the options need.
func (o Options) Slots() int {
	o = o.withDefaults()
	return o.MaxBatch + o.CacheEntries
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxBatch, 8)
	def(&o.QueueSize, 64)
	def(&o.PrefillBudget, 64)
	def(&o.MaxPromptTokens, 16384)
	def(&o.MaxCompletionTokens, 4096)
	def(&o.DefaultMaxTokens, 1024)
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.ModelName == "" {
		o.ModelName = "rwkv"
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.MaxBatch < 1:
		return fmt.Errorf("serve: MaxBatch %d: expected at least 1", o.MaxBatch)
	case o.QueueSize < 1:
		return fmt.Errorf("serve: QueueSize %d: expected at least 1", o.QueueSize)
	case o.CacheEntries < 0:
		return fmt.Errorf("serve: CacheEntries %d: expected 0 or more", o.CacheEntries)
	case o.PrefillBudget < 1:
		return fmt.Errorf("serve: PrefillBudget %d: expected at least 1", o.PrefillBudget)
	case o.MaxPromptTokens < 1 || o.MaxCompletionTokens < 1 || o.DefaultMaxTokens < 1:
		return errors.New("serve: MaxPromptTokens, MaxCompletionTokens and DefaultMaxTokens must be positive")
	case o.MaxBodyBytes < 1:
		return fmt.Errorf("serve: MaxBodyBytes %d: expected at least 1", o.MaxBodyBytes)
	}
	return nil
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "serve: "+format+"\n", args...)
	}
}

// Server answers the OpenAI API for one model. Its handler may be served
// by any http.Server; Close stops the scheduler.
type Server struct {
	opt     Options
	sched   *scheduler
	m       *metrics
	parse   *parser
	created int64
	handler http.Handler
}

// New starts a server over an engine and its tokenizer. The engine must
// have at least opt.Slots() free state slots (fewer cached states are kept
// otherwise); the server owns it until Close.
func New(e model.Engine, tok *tokenizer.Tokenizer, opt Options) (*Server, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	vocab := e.Config().Vocab
	if tok.VocabSize() != vocab {
		return nil, fmt.Errorf("serve: the tokenizer has %d tokens but the model %d", tok.VocabSize(), vocab)
	}
	if opt.StateBytes == 0 {
		opt.StateBytes = int64(e.Config().StateBytes())
	}
	m := newMetrics()
	s := &Server{
		opt: opt, m: m, created: time.Now().Unix(),
		sched: newScheduler(e, tok, opt, m),
		parse: &parser{tok: tok, vocab: vocab, maxPrompt: opt.MaxPromptTokens, maxCompletion: opt.MaxCompletionTokens,
			defaultCompletion: opt.DefaultMaxTokens, seed: randomSeed},
	}
	s.handler = s.routes()
	go s.sched.run()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close cancels the requests still running (their handlers answer at
// once), refuses new ones with 503, and releases every session, cached
// states included. Call it after http.Server.Shutdown has let running
// requests finish, or when its deadline has passed.
func (s *Server) Close() { s.sched.close() }

// randomSeed picks the seed of a request that gives none.
func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.LittleEndian.Uint64(b[:])
}
