package serve

import (
	"context"
	"sync"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// job is one request between its handler and the scheduler. The
// scheduler appends text and finally the outcome under mu and wakes the
// handler through notify (one element, never blocking); the handler takes
// what has accumulated. So a slow client never holds the scheduler up:
// its text waits in the job (at most max_tokens tokens of it).
type job struct {
	spec     *jobSpec
	ctx      context.Context // the client's request: done when it has gone
	enqueued time.Time

	mu     sync.Mutex
	pieces []string // text not yet taken
	tokens int      // tokens generated so far
	done   bool
	out    outcome
	notify chan struct{}

	// The scheduler's own fields.
	sess      model.Session
	seq       *generate.Seq
	answering bool // the answer is being generated (else: the prompt is fed)
	cancelled bool // Batch.Cancel has been called
	cached    int  // prompt tokens taken from the cache
	firstText bool
}

// outcome is how a job ended.
type outcome struct {
	finish                                       generate.Finish
	promptTokens, cachedTokens, completionTokens int
	// err is set when the job failed (finish is then FinishError or
	// FinishCancelled).
	err *apiError
}

func newJob(ctx context.Context, spec *jobSpec) *job {
	return &job{spec: spec, ctx: ctx, enqueued: time.Now(), notify: make(chan struct{}, 1)}
}

// wake tells the handler there is something to take.
func (j *job) wake() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// push adds generated text; tokens is the number generated so far.
func (j *job) push(text string, tokens int) {
	j.mu.Lock()
	j.pieces = append(j.pieces, text)
	j.tokens = tokens
	j.mu.Unlock()
	j.wake()
}

// finish records the outcome; later calls are ignored.
func (j *job) finish(out outcome) {
	j.mu.Lock()
	if !j.done {
		j.done, j.out = true, out
		j.tokens = out.completionTokens
	}
	j.mu.Unlock()
	j.wake()
}

// take returns the text accumulated since the last call, the tokens so
// far, and the outcome once the job has ended.
func (j *job) take() (pieces []string, tokens int, done bool, out outcome) {
	j.mu.Lock()
	defer j.mu.Unlock()
	pieces, j.pieces = j.pieces, nil
	return pieces, j.tokens, j.done, j.out
}
