package generate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// This file drives generation: any number of sequences through the
// engine's batched step, one step for all of them per token. Prompts are
// fed in bounded chunks (so a long prompt does not stall the others),
// tokens are chosen on the device (argmax or the session's sampler) and
// fed back there (Continue), and every step is submitted before the
// previous one's tokens are read, so the GPU never waits for the host.
//
// When a generation ends, its session has consumed the prompt and every
// generated token, the one that ended it included (a final step feeds it
// when no step in flight does), so a chat can continue from it.

// Request is one generation.
type Request struct {
	// Prompt is fed before generating, after whatever the session already
	// holds; it must not be empty.
	Prompt []int
	// Session is the sequence to continue (a chat keeps one across turns);
	// nil means a new session from the zero state, closed when the
	// generation ends.
	Session model.Session
	// Sampling picks the tokens; nil is greedy (the argmax).
	Sampling *model.Sampling
	// MaxTokens is the most tokens to generate; 0 feeds the prompt only.
	MaxTokens int
	// Stop ends the generation early (stop strings, token 0, end of turn).
	Stop StopRules
	// Stream shapes the text handed to OnText.
	Stream StreamOptions
	// OnText, when set, receives the text as it becomes safe to show
	// (whole characters; stop strings held back and never shown). An
	// error it returns ends the generation (FinishError).
	OnText func(text string) error
}

// Validate checks the request against a vocabulary.
func (r *Request) Validate(vocab int) error {
	if len(r.Prompt) == 0 {
		return errors.New("generate: the prompt is empty")
	}
	if r.MaxTokens < 0 {
		return fmt.Errorf("generate: MaxTokens %d is negative", r.MaxTokens)
	}
	if err := model.CheckTokens(r.Prompt, vocab); err != nil {
		return fmt.Errorf("generate: prompt: %w", err)
	}
	if r.Sampling != nil {
		if err := r.Sampling.Validate(vocab); err != nil {
			return err
		}
	}
	return r.Stop.Validate()
}

// Finish says why a generation ended.
type Finish string

// Reasons a generation ends (OpenAI's finish_reason values where they
// exist).
const (
	FinishLength    Finish = "length"    // MaxTokens reached
	FinishStop      Finish = "stop"      // a stop string or the end of the turn
	FinishEOS       Finish = "eos"       // the model produced token 0
	FinishCancelled Finish = "cancelled" // Cancel was called
	FinishError     Finish = "error"     // see Result.Err
)

// Result is what a generation produced.
type Result struct {
	Tokens []int  // the tokens generated, the one that ended it included
	Text   string // the text shown (a stop string and what followed removed)
	// Generated is the raw text of the generated tokens: what the
	// session's state has consumed after the prompt.
	Generated    []byte
	Finish       Finish
	StopString   string // the stop string that ended it, for FinishStop
	PromptTokens int
	// PromptTime runs from the first submission to the first token (the
	// prefill); DecodeTime from there to the last token.
	PromptTime, DecodeTime time.Duration
	Err                    error
}

// Seq is one generation inside a Batch.
type Seq struct {
	req      Request
	s        model.Session
	owned    bool // the session was made for this generation
	fed      int  // prompt tokens submitted
	fedGen   int  // generated tokens fed back (Continue steps submitted)
	inFlight int  // submitted steps whose token has not been received
	streamer *Streamer
	res      Result
	done     bool
	started  time.Time
	firstTok time.Time
	finished chan struct{}
}

// Done is closed when the generation has ended and everything its
// session must consume has been submitted.
func (q *Seq) Done() <-chan struct{} { return q.finished }

// Result is the generation's outcome, once Done is closed.
func (q *Seq) Result() Result { return q.res }

// Session is the sequence the generation runs in.
func (q *Seq) Session() model.Session { return q.s }

// Batch generates for many sequences at once. One goroutine drives it by
// calling Step; Add and Cancel are called from the same goroutine between
// steps.
type Batch struct {
	e   model.Engine
	tok *tokenizer.Tokenizer
	// PrefillBudget bounds the prompt tokens fed per step across all
	// generations (0: no bound), so that decoding sequences keep their
	// pace while long prompts come in.
	PrefillBudget int

	active []*Seq
	prev   *submitted // the step submitted last, not yet read
}

// submitted is a step on the device and the generations whose token it
// brings back.
type submitted struct {
	p     model.Pending
	seqs  []*Seq
	token []bool // seqs[i] asked for a token
}

// NewBatch returns a Batch over an engine and its tokenizer.
func NewBatch(e model.Engine, tok *tokenizer.Tokenizer) *Batch {
	return &Batch{e: e, tok: tok}
}

// Add starts a generation; it runs from the next Step.
func (b *Batch) Add(req Request) (*Seq, error) {
	if err := req.Validate(b.e.Config().Vocab); err != nil {
		return nil, err
	}
	st, err := NewStreamer(b.tok, req.Stop, req.Stream)
	if err != nil {
		return nil, err
	}
	q := &Seq{req: req, s: req.Session, streamer: st, finished: make(chan struct{})}
	q.res.PromptTokens = len(req.Prompt)
	if q.s == nil {
		if q.s, err = b.e.NewSession(); err != nil {
			return nil, err
		}
		q.owned = true
	}
	if err := q.s.SetSampling(req.Sampling); err != nil {
		if q.owned {
			q.s.Close()
		}
		return nil, err
	}
	b.active = append(b.active, q)
	return q, nil
}

// Cancel ends a generation; its session consumes what was already
// generated, and the whole prompt: a caller's session cancelled before its
// prompt was fed whole is fed the rest (in the next steps), so that it
// always holds the prompt.
func (b *Batch) Cancel(q *Seq) { q.end(FinishCancelled, nil) }

// Len is the number of generations not yet retired.
func (b *Batch) Len() int { return len(b.active) }

// end marks the generation finished (the first reason wins) and releases
// the text the streamer holds back.
func (q *Seq) end(f Finish, err error) {
	if q.done {
		return
	}
	q.done = true
	q.res.Finish, q.res.Err = f, err
	if f != FinishStop && f != FinishEOS {
		if tail := q.streamer.Finish(); tail != "" && q.req.OnText != nil && err == nil {
			if terr := q.req.OnText(tail); terr != nil {
				q.res.Finish, q.res.Err = FinishError, terr
			}
		}
	}
	switch {
	case !q.firstTok.IsZero():
		q.res.DecodeTime = time.Since(q.firstTok)
	case !q.started.IsZero():
		q.res.PromptTime = time.Since(q.started)
	}
}

// Step submits the next step of every generation, then reads the tokens of
// the step submitted before it and hands them to their generations, and
// retires the generations that have ended. It returns how many remain. An
// error is the engine's: it ends every generation.
func (b *Batch) Step(ctx context.Context) (int, error) {
	next, err := b.submit(ctx)
	if err != nil {
		b.fail(err)
		return 0, err
	}
	if b.prev != nil {
		if err := b.receive(b.prev); err != nil {
			b.prev = next
			b.fail(err)
			return 0, err
		}
	}
	b.prev = next
	b.retire()
	if len(b.active) == 0 && b.prev != nil {
		// Nothing left to pipeline: wait for the last step (final feeds).
		err := b.receive(b.prev)
		b.prev = nil
		if err != nil {
			return 0, err
		}
	}
	return len(b.active), nil
}

// submit builds and submits one step: for each generation the next chunk
// of its prompt (asking for a token with the last chunk, unless it
// generates nothing), or its chosen token fed back on the device (asking
// for the next), or, once it has ended, the feeding of its last token.
func (b *Batch) submit(ctx context.Context) (*submitted, error) {
	var seqs []model.Seq
	sub := &submitted{}
	budget := b.PrefillBudget
	for _, q := range b.active {
		sq := model.Seq{Session: q.s}
		chosen := len(q.res.Tokens) + q.inFlight // tokens chosen on the device so far
		switch {
		case q.done && q.fedGen < len(q.res.Tokens):
			sq.Continue = true // feed the last kept token, ask for nothing
		case q.done && !q.feedsRest():
			continue
		case q.fed < len(q.req.Prompt):
			n := len(q.req.Prompt) - q.fed
			if b.PrefillBudget > 0 {
				if budget <= 0 {
					continue
				}
				n = min(n, budget)
				budget -= n
			}
			if q.fed == 0 {
				q.started = time.Now()
			}
			sq.Tokens = q.req.Prompt[q.fed : q.fed+n]
			q.fed += n
			if q.fed == len(q.req.Prompt) && q.req.MaxTokens > 0 && !q.done {
				sq.Want = model.WantToken
			}
		case chosen > 0 && chosen < q.req.MaxTokens:
			sq.Continue, sq.Want = true, model.WantToken
		default:
			continue // every token it may generate is chosen: wait for them
		}
		if sq.Continue {
			q.fedGen++
		}
		if sq.Want == model.WantToken {
			q.inFlight++
		}
		seqs = append(seqs, sq)
		sub.seqs = append(sub.seqs, q)
		sub.token = append(sub.token, sq.Want == model.WantToken)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	p, err := b.e.Submit(ctx, seqs)
	if err != nil {
		return nil, err
	}
	sub.p = p
	return sub, nil
}

// receive waits for a step and hands each generation its token.
func (b *Batch) receive(sub *submitted) error {
	res, err := sub.p.Wait()
	if err != nil {
		return err
	}
	now := time.Now()
	for i, q := range sub.seqs {
		if !sub.token[i] {
			continue
		}
		q.inFlight--
		if q.done {
			continue // a token chosen after the end: not kept
		}
		if q.firstTok.IsZero() {
			q.firstTok = now
			q.res.PromptTime = now.Sub(q.started)
		}
		q.deliver(res[i].Token)
	}
	return nil
}

// deliver takes one generated token: its text goes to OnText, and the
// stop rules and the token limit may end the generation.
func (q *Seq) deliver(id int) {
	q.res.Tokens = append(q.res.Tokens, id)
	text, stopped, err := q.streamer.Add(id)
	if err != nil {
		q.end(FinishError, err)
		return
	}
	if text != "" && q.req.OnText != nil {
		if err := q.req.OnText(text); err != nil {
			q.end(FinishError, err)
			return
		}
	}
	switch {
	case stopped && q.streamer.Reason() == StopEOS:
		q.end(FinishEOS, nil)
	case stopped:
		q.res.StopString = q.streamer.StopString()
		q.end(FinishStop, nil)
	case len(q.res.Tokens) >= q.req.MaxTokens:
		q.end(FinishLength, nil)
	}
}

// retire removes the generations that have ended and have nothing left to
// submit, closing the sessions they made.
func (b *Batch) retire() {
	kept := b.active[:0]
	for _, q := range b.active {
		if !q.retirable() {
			kept = append(kept, q)
			continue
		}
		q.res.Text = q.streamer.Text()
		q.res.Generated = q.streamer.Generated()
		if q.owned {
			q.s.Close()
		}
		close(q.finished)
	}
	clear(b.active[len(kept):])
	b.active = kept
}

// retirable: ended (or a prompt-only request fully fed), every token it
// asked for received, and its last kept token fed.
func (q *Seq) retirable() bool {
	if !q.done && q.req.MaxTokens == 0 && q.fed == len(q.req.Prompt) {
		q.end(FinishLength, nil)
	}
	return q.done && q.inFlight == 0 && q.fedGen >= len(q.res.Tokens) && !q.feedsRest()
}

// feedsRest reports whether an ended generation must still feed the rest
// of its prompt: one cancelled before its prompt was fed whole, in the
// caller's session, which must hold the whole prompt (a chat's transcript
// says it does). A session made for the generation is closed instead.
func (q *Seq) feedsRest() bool {
	return q.done && !q.owned && q.res.Finish == FinishCancelled && q.fed < len(q.req.Prompt)
}

// fail ends every generation with err and retires them.
func (b *Batch) fail(err error) {
	for _, q := range b.active {
		q.end(FinishError, err)
		q.inFlight = 0
		q.fedGen = len(q.res.Tokens)
	}
	b.prev = nil
	b.retire()
}

// Generate runs one generation to its end on its own batch (run and chat
// use it; the same path as many sequences in a server). ctx cancels it
// between steps, never inside one: the generation then ends as
// FinishCancelled, its session having consumed the tokens generated so far
// (and, when it is the caller's, the whole prompt; see Batch.Cancel).
func Generate(ctx context.Context, e model.Engine, tok *tokenizer.Tokenizer, req Request) (Result, error) {
	b := NewBatch(e, tok)
	q, err := b.Add(req)
	if err != nil {
		return Result{}, err
	}
	// A step stopped inside (model.StepError) would end the generation
	// with an error and leave the session between two tokens of the prompt.
	stepCtx := context.WithoutCancel(ctx)
	for b.Len() > 0 {
		if ctx.Err() != nil {
			b.Cancel(q)
		}
		if _, err := b.Step(stepCtx); err != nil {
			return q.res, err
		}
	}
	if q.res.Err != nil {
		return q.res, q.res.Err
	}
	return q.res, nil
}
