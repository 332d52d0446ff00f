package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// scheduler owns the engine: one goroutine (run) drives a generate.Batch,
// admitting queued jobs between steps, cancelling those whose client has
// gone, and moving finished ones on (see the package doc).
type scheduler struct {
	e        model.Engine
	batch    *generate.Batch
	maxBatch int
	cache    *prefixCache
	m        *metrics
	// entryBytes is the device memory of one cached state (for metrics).
	entryBytes int64
	logf       func(format string, args ...any)

	mu      sync.Mutex // guards closed and sending on queue
	closed  bool
	queue   chan *job
	stop    chan struct{}
	stopped chan struct{}

	active []*job // the scheduler goroutine's
}

func newScheduler(e model.Engine, tok *tokenizer.Tokenizer, opt Options, m *metrics) *scheduler {
	s := &scheduler{
		e: e, batch: generate.NewBatch(e, tok), maxBatch: opt.MaxBatch,
		cache: newPrefixCache(opt.CacheEntries), m: m, entryBytes: opt.StateBytes, logf: opt.logf,
		queue: make(chan *job, opt.QueueSize), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.batch.PrefillBudget = opt.PrefillBudget
	s.cache.onEvict = m.cacheEvictions.Inc
	m.batchCapacity.Set(float64(opt.MaxBatch))
	m.queueCapacity.Set(float64(opt.QueueSize))
	m.cacheCapacity.Set(float64(opt.CacheEntries))
	return s
}

// submit queues a job, or refuses it: 429 when the queue is full, 503
// once the server is shutting down.
func (s *scheduler) submit(j *job) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Message: "the server is shutting down"}
	}
	select {
	case s.queue <- j:
		s.m.queueLength.Set(float64(len(s.queue)))
		return nil
	default:
		s.m.rejected.Inc()
		return &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "queue_full", RetryAfter: 1,
			Message: fmt.Sprintf("the server is busy: %d requests are already waiting; retry later", cap(s.queue))}
	}
}

// close stops the scheduler: queued jobs are refused, running ones
// cancelled (their handlers answer at once), cached states released. It
// returns when the scheduler goroutine has ended.
func (s *scheduler) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	<-s.stopped
}

// run is the scheduler goroutine.
func (s *scheduler) run() {
	defer close(s.stopped)
	ctx := context.Background()
	for {
		select {
		case <-s.stop:
			s.shutdown(ctx)
			return
		default:
		}
		if len(s.active) == 0 {
			select {
			case j := <-s.queue:
				s.admit(j)
			case <-s.stop:
				continue
			}
		}
		for len(s.active) < s.maxBatch && s.admitNext() {
		}
		s.cancelGone()
		if s.batch.Len() > 0 {
			s.m.steps.Inc()
			if _, err := s.batch.Step(ctx); err != nil {
				// Batch ended every generation with the error; advance
				// answers each job.
				s.logf("engine step failed: %v", err)
			}
		}
		s.advance()
		s.gauges()
	}
}

// admitNext admits one queued job if there is one.
func (s *scheduler) admitNext() bool {
	select {
	case j := <-s.queue:
		s.admit(j)
		return true
	default:
		return false
	}
}

func (s *scheduler) gauges() {
	s.m.occupancy.Set(float64(len(s.active)))
	s.m.queueLength.Set(float64(len(s.queue)))
	s.m.cacheEntries.Set(float64(s.cache.Len()))
	s.m.cacheBytes.Set(float64(int64(s.cache.Len()) * s.entryBytes))
}

// shutdown cancels every job, runs the steps that feed what the
// cancelled generations already chose, and releases every session.
func (s *scheduler) shutdown(ctx context.Context) {
	for {
		select {
		case j := <-s.queue:
			j.finish(outcome{finish: generate.FinishCancelled, err: &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Message: "the server is shutting down"}})
			continue
		default:
		}
		break
	}
	for _, j := range s.active {
		if !j.cancelled {
			s.batch.Cancel(j.seq)
			j.cancelled = true
		}
	}
	for s.batch.Len() > 0 {
		if _, err := s.batch.Step(ctx); err != nil {
			break
		}
	}
	for _, j := range s.active {
		j.sess.Close()
		s.m.cancelled.Inc()
		j.finish(outcome{finish: generate.FinishCancelled, promptTokens: len(j.spec.prompt), cachedTokens: j.cached,
			err: &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Message: "the server shut down before the answer was complete"}})
	}
	s.active = nil
	s.cache.clear()
	s.gauges()
}

// admit starts a job: from the longest cached state its prompt extends
// (keeping at least its last token to feed), else from a new session.
func (s *scheduler) admit(j *job) {
	if j.ctx.Err() != nil {
		s.m.cancelled.Inc()
		j.finish(outcome{finish: generate.FinishCancelled})
		return
	}
	p := j.spec.prompt
	var err error
	if e := s.cache.lookup(p, len(p)-1); e != nil {
		s.m.cacheHits.Inc()
		j.cached = len(e.tokens)
		j.sess, err = s.fork(e)
	} else {
		s.m.cacheMisses.Inc()
		j.sess, err = s.newSession()
	}
	if err != nil {
		j.finish(outcome{finish: generate.FinishError, err: &apiError{Status: http.StatusServiceUnavailable, Type: typeServer,
			Message: fmt.Sprintf("no state slot for the request: %v", err)}})
		return
	}
	s.m.promptTokens.Add(float64(len(p)))
	s.m.cachedTokens.Add(float64(j.cached))
	s.m.processedTokens.Add(float64(len(p) - j.cached))
	if j.cached < len(p)-1 {
		// The prompt but its last token, with nothing asked back.
		j.seq, err = s.batch.Add(generate.Request{Prompt: p[j.cached : len(p)-1], Session: j.sess})
	} else {
		err = s.startAnswer(j)
	}
	if err != nil {
		s.failJob(j, err)
		return
	}
	s.active = append(s.active, j)
}

// startAnswer feeds the last prompt token and generates the answer.
func (s *scheduler) startAnswer(j *job) error {
	p := j.spec.prompt
	sp := j.spec.sampling
	req := generate.Request{
		Prompt: p[len(p)-1:], Session: j.sess, Sampling: &sp, MaxTokens: j.spec.maxTokens,
		Stop: j.spec.stop, Stream: j.spec.streamOpt,
		OnText: func(text string) error {
			if !j.firstText {
				j.firstText = true
				s.m.ttft.Observe(time.Since(j.enqueued).Seconds())
			}
			j.push(text, len(j.seq.Result().Tokens))
			return nil
		},
	}
	q, err := s.batch.Add(req)
	if err != nil {
		return err
	}
	j.seq, j.answering = q, true
	return nil
}

// newSession opens a session, evicting cached states while no slot is
// free.
func (s *scheduler) newSession() (model.Session, error) {
	for {
		sess, err := s.e.NewSession()
		if errors.Is(err, model.ErrNoSlot) && s.cache.evict(nil) {
			continue
		}
		return sess, err
	}
}

// fork copies a cached state into a new session, evicting other cached
// states while no slot is free.
func (s *scheduler) fork(e *cacheEntry) (model.Session, error) {
	for {
		f, err := e.s.Fork()
		if errors.Is(err, model.ErrNoSlot) && s.cache.evict(e) {
			continue
		}
		return f, err
	}
}

// cancelGone cancels the generations whose client has gone; they leave
// the batch at the next step.
func (s *scheduler) cancelGone() {
	for _, j := range s.active {
		if !j.cancelled && j.ctx.Err() != nil {
			s.batch.Cancel(j.seq)
			j.cancelled = true
		}
	}
}

// advance moves on the jobs whose current generation has finished: after
// the prompt, the state is cached and the answer started; after the
// answer, the job is answered and its state cached.
func (s *scheduler) advance() {
	kept := s.active[:0]
	for _, j := range s.active {
		select {
		case <-j.seq.Done():
		default:
			kept = append(kept, j)
			continue
		}
		r := j.seq.Result()
		switch {
		case r.Finish == generate.FinishError:
			s.failJob(j, r.Err)
		case r.Finish == generate.FinishCancelled:
			s.m.cancelled.Inc()
			s.m.completionTokens.Add(float64(len(r.Tokens)))
			j.finish(outcome{finish: generate.FinishCancelled, promptTokens: len(j.spec.prompt), cachedTokens: j.cached, completionTokens: len(r.Tokens)})
			s.keep(j, r)
		case !j.answering:
			s.cachePrompt(j)
			if err := s.startAnswer(j); err != nil {
				s.failJob(j, err)
				continue
			}
			kept = append(kept, j)
		default:
			s.m.completionTokens.Add(float64(len(r.Tokens)))
			j.finish(outcome{finish: r.Finish, promptTokens: len(j.spec.prompt), cachedTokens: j.cached, completionTokens: len(r.Tokens)})
			s.keep(j, r)
		}
	}
	clear(s.active[len(kept):])
	s.active = kept
}

// cachePrompt keeps a copy of the state after all but the last prompt
// token.
func (s *scheduler) cachePrompt(j *job) {
	if s.cache.capacity == 0 {
		return
	}
	p := j.spec.prompt
	f, err := s.forkSession(j.sess)
	if err != nil {
		s.logf("caching a prompt state: %v", err)
		return
	}
	s.cache.insert(p[:len(p)-1], f)
}

// forkSession forks an active session, evicting cached states while no
// slot is free.
func (s *scheduler) forkSession(sess model.Session) (model.Session, error) {
	for {
		f, err := sess.Fork()
		if errors.Is(err, model.ErrNoSlot) && s.cache.evict(nil) {
			continue
		}
		return f, err
	}
}

// keep hands a finished answer's session to the cache: its state has
// consumed the prompt and every token generated. A job cancelled while its
// prompt was fed stopped at a point the cache cannot name: its session is
// closed.
func (s *scheduler) keep(j *job, r generate.Result) {
	if !j.answering {
		j.sess.Close()
		return
	}
	s.cache.insert(slices.Concat(j.spec.prompt, r.Tokens), j.sess)
}

// failJob answers a job with a server error and releases its session.
func (s *scheduler) failJob(j *job, err error) {
	if j.sess != nil {
		j.sess.Close()
	}
	j.finish(outcome{finish: generate.FinishError, promptTokens: len(j.spec.prompt), cachedTokens: j.cached,
		err: &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: fmt.Sprintf("generation failed: %v", err)}})
}
