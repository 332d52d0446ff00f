package generate

import (
	"fmt"
	"unicode/utf8"

	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// StopReason says why a Streamer ended.
type StopReason int

const (
	// NotStopped: still generating, or ended by the caller (Finish) for its
	// own reason, such as a token limit.
	NotStopped StopReason = iota
	// StopEOS: the model produced token 0 (<s>, end of text).
	StopEOS
	// StopString: a stop string (or the end-of-turn "\n\n") appeared.
	StopString
)

// String describes the reason for logs and API responses.
func (r StopReason) String() string {
	switch r {
	case NotStopped:
		return "none"
	case StopEOS:
		return "eos"
	case StopString:
		return "stop"
	}
	return fmt.Sprintf("StopReason(%d)", int(r))
}

// StreamOptions shape the text a Streamer returns.
type StreamOptions struct {
	// RawBytes returns bytes that are not valid UTF-8 (a model can produce
	// them) as they are; by default each becomes U+FFFD, so every piece of
	// output is valid UTF-8.
	RawBytes bool
	// TrimLeadingSpace drops one space at the very start of the output (a
	// chat reply starts with the space after "Assistant:").
	TrimLeadingSpace bool
}

// Streamer turns generated tokens into text that is safe to show as it
// comes: it never returns part of a UTF-8 character (tokenizer's
// StreamDecoder holds incomplete ones back), applies the stop rules across
// token boundaries (holding back text that might start a stop string until
// it cannot), and says when generation must end. A Streamer is not safe for
// concurrent use.
type Streamer struct {
	tok   *tokenizer.Tokenizer
	dec   *tokenizer.StreamDecoder
	stop  *StopMatcher
	rules StopRules
	opt   StreamOptions

	generated []byte // decoded bytes of every token added
	output    []byte // everything returned
	trimmed   bool   // the leading-space decision has been made
	done      bool
	reason    StopReason
	tokens    int
}

// NewStreamer returns a Streamer for the tokens of tok under rules.
func NewStreamer(tok *tokenizer.Tokenizer, rules StopRules, opt StreamOptions) (*Streamer, error) {
	m, err := NewStopMatcher(rules)
	if err != nil {
		return nil, err
	}
	return &Streamer{tok: tok, dec: tok.NewStreamDecoder(), stop: m, rules: rules, opt: opt}, nil
}

// Add takes the next generated token and returns the text to show now and
// whether generation has ended (token 0 or a stop string; see Reason). The
// caller should then sample no more tokens. An id outside the vocabulary is
// an error and changes nothing. After the end, Add returns ("", true, nil).
func (s *Streamer) Add(id int) (string, bool, error) {
	if s.done {
		return "", true, nil
	}
	if id < 0 || id >= s.tok.VocabSize() {
		return "", false, fmt.Errorf("generate: token %d is outside the vocabulary [0, %d)", id, s.tok.VocabSize())
	}
	s.tokens++
	if id == 0 && !s.rules.IgnoreEOS {
		return s.end(StopEOS), true, nil
	}
	b, err := s.dec.Add(id)
	if err != nil {
		return "", false, fmt.Errorf("generate: %w", err)
	}
	s.generated = append(s.generated, b...)
	out, stopped := s.stop.Add(b)
	if stopped {
		s.generated = append(s.generated, s.dec.Flush()...)
		s.done, s.reason = true, StopString
	}
	return s.emit(out), s.done, nil
}

// Finish ends generation for the caller's own reason (a token limit, a
// cancelled request) and returns the text still held back. After a stop it
// returns "".
func (s *Streamer) Finish() string {
	if s.done {
		return ""
	}
	return s.end(NotStopped)
}

// end releases what is held back: the decoder's incomplete bytes (which
// can no longer be completed) through the stop matcher, then the matcher's.
func (s *Streamer) end(reason StopReason) string {
	tail := s.dec.Flush()
	s.generated = append(s.generated, tail...)
	out, stopped := s.stop.Add(tail)
	if stopped {
		reason = StopString
	} else {
		out = append(out, s.stop.Flush()...)
	}
	s.done, s.reason = true, reason
	return s.emit(out)
}

// emit applies the output options and records the text.
func (s *Streamer) emit(b []byte) string {
	if !s.trimmed && len(b) > 0 {
		s.trimmed = true
		if s.opt.TrimLeadingSpace && b[0] == ' ' {
			b = b[1:]
		}
	}
	if !s.opt.RawBytes {
		b = replaceInvalid(b)
	}
	s.output = append(s.output, b...)
	return string(b)
}

// replaceInvalid replaces each byte that is not part of a valid UTF-8
// sequence by U+FFFD. The result does not depend on how the bytes were cut
// into pieces as long as no valid sequence is cut, which the stream decoder
// ensures.
func replaceInvalid(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// Done reports whether generation has ended.
func (s *Streamer) Done() bool { return s.done }

// Reason says why generation ended.
func (s *Streamer) Reason() StopReason { return s.reason }

// StopString returns the stop string that ended generation ("\n\n" for the
// end-of-turn rule), or "".
func (s *Streamer) StopString() string {
	str, _ := s.stop.Found()
	return str
}

// Text returns everything returned so far: the reply.
func (s *Streamer) Text() string { return string(s.output) }

// Generated returns the decoded bytes of every token added (raw, stop string
// and anything after it included): what a state that was fed those tokens
// has consumed, for Conversation.Fed. It is complete once generation has
// ended; before that it lacks an incomplete character held back.
func (s *Streamer) Generated() []byte { return s.generated }

// Tokens returns how many tokens were added, token 0 included.
func (s *Streamer) Tokens() int { return s.tokens }
