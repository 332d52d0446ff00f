package model

import (
	"errors"
	"fmt"
)

// Output selects which positions' logits Session.Forward returns.
type Output int

const (
	// OutputNone only advances the state (a prefill whose logits are not needed).
	OutputNone Output = iota
	// OutputLast returns the logits of the last token: [V].
	OutputLast
	// OutputAll returns the logits of every token: [T][V], row-major.
	OutputAll
)

// Engine is a loaded model on one device. The CPU reference and the GPU
// engine both implement it, so generation, serving and benchmarks do not
// care which one runs.
type Engine interface {
	// Config returns the model's hyperparameters.
	Config() Config
	// Device describes where the engine runs, e.g. "cpu" or "gpu: NVIDIA H100".
	Device() string
	// NewSession starts a sequence from the all-zero state.
	NewSession() (Session, error)
	// Close releases the engine's resources; sessions must be closed first.
	Close() error
}

// Session is one sequence's recurrent state on an engine.
type Session interface {
	// Forward consumes tokens in order (a prefill when there are several,
	// with the same result as one call per token) and returns the logits
	// selected by out.
	Forward(tokens []int, out Output) ([]float32, error)
	// State returns a copy of the current state.
	State() (*State, error)
	// SetState replaces the current state with a copy of s.
	SetState(s *State) error
	// Reset returns to the all-zero state of a fresh sequence.
	Reset() error
	// Close releases the session.
	Close() error
}

// Argmaxer is implemented by sessions that can pick the most likely next
// token on the device, without reading the logits back (greedy decoding and
// benchmarks). Ties go to the lowest id.
type Argmaxer interface {
	ForwardArgmax(tokens []int) (int, error)
}

// ErrBadToken is wrapped by errors about token ids outside the vocabulary.
var ErrBadToken = errors.New("token id out of range")

// CheckTokens returns an error naming the first token id outside [0, vocab),
// or an error when tokens is empty.
func CheckTokens(tokens []int, vocab int) error {
	if len(tokens) == 0 {
		return errors.New("model: no tokens to process")
	}
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return fmt.Errorf("model: token %d at position %d is outside the vocabulary [0, %d): %w", t, i, vocab, ErrBadToken)
		}
	}
	return nil
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
