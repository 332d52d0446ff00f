package model

import (
	"context"
	"errors"
	"fmt"
)

// Engine is a loaded model on one device. The CPU reference and the GPU
// engine both implement it, so generation, serving and benchmarks do not
// care which one runs.
//
// An Engine is safe for concurrent use. Step and Wait block until the
// device has produced what was asked; Submit blocks only while the step is
// recorded and handed to the device. Calls on one session are applied in
// the order they were submitted.
type Engine interface {
	// Config returns the model's hyperparameters.
	Config() Config
	// Device describes where the engine runs, e.g. "cpu" or "gpu: NVIDIA H100".
	Device() string
	// NewSession starts a sequence from the all-zero state in a free state
	// slot. It fails with an error wrapping ErrNoSlot when every slot is in
	// use.
	NewSession() (Session, error)
	// Step advances every sequence of seqs by its tokens, in one batched
	// pass when they fit (see Seq), and returns one result per sequence, in
	// order. It equals Submit followed by Wait.
	Step(ctx context.Context, seqs []Seq) ([]SeqResult, error)
	// Submit records the step, hands it to the device and returns without
	// waiting for its results, so that the next step can be recorded while
	// the device runs this one. A step whose tokens exceed the engine's
	// per-pass limit runs its earlier passes before Submit returns; ctx is
	// checked between passes (see StepError).
	Submit(ctx context.Context, seqs []Seq) (Pending, error)
	// Close releases the engine's resources; sessions must be closed first.
	Close() error
}

// Pending is a submitted step whose results may not be ready yet.
type Pending interface {
	// Wait blocks until the step has finished and returns its results.
	// Waiting again returns the same results.
	Wait() ([]SeqResult, error)
}

// Session is one sequence's recurrent state, held by its engine (on the
// GPU engine: a state slot in device memory).
type Session interface {
	// Fork returns a new session whose state is a copy of this one's (on
	// the GPU, copied in device memory), including the token last chosen
	// for it, so that both can continue independently.
	Fork() (Session, error)
	// State returns a copy of the current state (read back to the host).
	State() (*State, error)
	// SetState replaces the current state with a copy of s.
	SetState(s *State) error
	// Reset returns to the all-zero state of a fresh sequence.
	Reset() error
	// SetSampling chooses how WantToken steps pick this session's tokens:
	// nil (the default) is the argmax; otherwise RWKV's sampler with p
	// (model.Sampling), whose penalty counts and random counter start
	// afresh: call it at the start of each reply. Fork copies the
	// sampler's state with the session's.
	SetSampling(p *Sampling) error
	// Close frees the session's slot. Closing twice is harmless.
	Close() error
}

// Want says what a sequence receives from a step.
type Want uint8

const (
	// WantNothing only advances the state (a prefill whose logits are not
	// needed).
	WantNothing Want = iota
	// WantLast returns the logits of the sequence's last token: [V].
	WantLast
	// WantAll returns the logits of every token of the sequence: [T][V],
	// row-major.
	WantAll
	// WantToken returns the next token, chosen on the device from the last
	// token's logits by the session's sampler (Session.SetSampling; by
	// default the argmax, lowest id on ties); the logits do not leave the
	// device. A later step can feed it back with Continue.
	WantToken
)

// String names the want for messages.
func (w Want) String() string {
	switch w {
	case WantNothing:
		return "nothing"
	case WantLast:
		return "last logits"
	case WantAll:
		return "all logits"
	case WantToken:
		return "token"
	}
	return fmt.Sprintf("Want(%d)", uint8(w))
}

// Seq is one sequence's part of a step.
type Seq struct {
	// Session is the sequence; a session may appear once per step.
	Session Session
	// Tokens are the ids to consume, in order: one for a decode step, many
	// for a prefill. Sequences of one step may mix both freely.
	Tokens []int
	// Continue feeds, after Tokens, the token chosen for this session by
	// its last WantToken step, without it coming back to the host first
	// (chained decoding). Tokens is then usually empty.
	Continue bool
	// Want selects the result.
	Want Want
}

// SeqResult is what one sequence gets back from a step.
type SeqResult struct {
	// Logits holds the logits asked for by WantLast ([V]) or WantAll
	// ([T][V]); nil otherwise.
	Logits []float32
	// Token is the token chosen by WantToken; -1 otherwise.
	Token int
	// Consumed is how many input tokens (Tokens, plus one for Continue)
	// the session has consumed; less than all only when the step was
	// cancelled between passes.
	Consumed int
}

// StepError is returned by a step that stopped early (its context was
// cancelled, or a pass failed) after some passes had run. Each session has
// then consumed the first Results[i].Consumed of its tokens, whole passes
// only, and its state is the state after those tokens: feeding the rest in
// a later step continues exactly. Results hold no logits or tokens.
type StepError struct {
	Results []SeqResult
	Err     error
}

func (e *StepError) Error() string { return "step stopped early: " + e.Err.Error() }

// Unwrap returns the cause (context.Canceled, say).
func (e *StepError) Unwrap() error { return e.Err }

// Errors wrapped by engines.
var (
	// ErrBadToken is wrapped by errors about token ids outside the vocabulary.
	ErrBadToken = errors.New("token id out of range")
	// ErrNoSlot is wrapped when every state slot is in use.
	ErrNoSlot = errors.New("every state slot is in use")
	// ErrNoChosenToken is wrapped when a sequence asks to Continue but no
	// step has chosen a token for its session yet.
	ErrNoChosenToken = errors.New("no token has been chosen for this session yet")
	// ErrClosed is wrapped by calls on a closed session or engine.
	ErrClosed = errors.New("closed")
)

// CheckTokens returns an error naming the first token id outside [0, vocab),
// or an error when tokens is empty.
func CheckTokens(tokens []int, vocab int) error {
	if len(tokens) == 0 {
		return errors.New("model: no tokens to process")
	}
	return checkIDs(tokens, vocab)
}

func checkIDs(tokens []int, vocab int) error {
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return fmt.Errorf("model: token %d at position %d is outside the vocabulary [0, %d): %w", t, i, vocab, ErrBadToken)
		}
	}
	return nil
}

// CheckStep validates a step's shape: at least one sequence, every session
// non-nil and present once, each sequence with something to consume, token
// ids inside the vocabulary, and a known Want. Engines call it first; the
// error names the sequence.
func CheckStep(seqs []Seq, vocab int) error {
	if len(seqs) == 0 {
		return errors.New("model: a step needs at least one sequence")
	}
	seen := make(map[Session]int, len(seqs))
	for i, s := range seqs {
		if s.Session == nil {
			return fmt.Errorf("model: sequence %d has no session", i)
		}
		if j, ok := seen[s.Session]; ok {
			return fmt.Errorf("model: sequences %d and %d use the same session (a session may appear once per step)", j, i)
		}
		seen[s.Session] = i
		if len(s.Tokens) == 0 && !s.Continue {
			return fmt.Errorf("model: sequence %d has no tokens to consume", i)
		}
		if err := checkIDs(s.Tokens, vocab); err != nil {
			return fmt.Errorf("sequence %d: %w", i, err)
		}
		if s.Want > WantToken {
			return fmt.Errorf("model: sequence %d asks for unknown %v", i, s.Want)
		}
	}
	return nil
}

// InputLen is the number of tokens the sequence consumes.
func (s Seq) InputLen() int {
	if s.Continue {
		return len(s.Tokens) + 1
	}
	return len(s.Tokens)
}

// Forward runs tokens through one session (a step of one sequence) and
// returns the logits selected by want (nil for WantNothing and WantToken).
func Forward(ctx context.Context, e Engine, s Session, tokens []int, want Want) ([]float32, error) {
	r, err := e.Step(ctx, []Seq{{Session: s, Tokens: tokens, Want: want}})
	if err != nil {
		return nil, err
	}
	return r[0].Logits, nil
}

// Argmax returns the index of the largest value, the lowest index on ties.
// NaN values are never chosen unless all values are NaN.
func Argmax(v []float32) int {
	best := -1
	for i, x := range v {
		if x != x {
			continue
		}
		if best < 0 || x > v[best] {
			best = i
		}
	}
	if best < 0 {
		return 0
	}
	return best
}

// ErrNonFinite is wrapped by errors about NaN or Inf values in results.
var ErrNonFinite = errors.New("non-finite values")

// CheckFinite returns an error when logits ([rows][V], row-major) hold NaN
// or Inf values, naming the first row holding one (firstPos is the position
// of row 0, for the message) and how many values of each kind there are.
func CheckFinite(logits []float32, V, firstPos int) error {
	nan, inf, first := 0, 0, -1
	for i, x := range logits {
		switch {
		case x != x:
			nan++
		case x > maxFloat32 || x < -maxFloat32:
			inf++
		default:
			continue
		}
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return nil
	}
	return fmt.Errorf("model: the logits at position %d (token index %d) hold non-finite values: %d NaN and %d Inf in %d rows (%w); the model's weights may hold NaN or Inf: check with rwkv info --check",
		firstPos+first/V, first%V, nan, inf, len(logits)/V, ErrNonFinite)
}

const maxFloat32 = 3.40282346638528859811704183484516925440e+38
