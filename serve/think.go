package serve

import (
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
)

// replyShaper splits a chat answer, as it streams, into reasoning and
// content according to the think mode that opened it:
//
//   - ThinkOff: everything is content (the generate.Streamer has dropped
//     the space after "Assistant:").
//   - ThinkFast and ThinkFastInline: the prompt ended in "</think", so
//     the answer starts with the ">" that closes it; that ">" and the
//     whitespace after it are dropped, the rest is content.
//   - ThinkOn: the prompt ended in "<think"; the ">" closing the tag is
//     dropped, the text up to "</think>" is reasoning (leading whitespace
//     dropped), and after it, leading whitespace dropped, content.
//
// A "</think>" split across pieces is held back until it is whole.
type replyShaper struct {
	mode generate.Think
	// state: expecting the closing ">", at the start of the reasoning, in
	// the reasoning, at the start of the content, in the content.
	state   shaperState
	pending string // held back: a possible start of "</think>"
}

type shaperState int

const (
	expectClose shaperState = iota
	reasoningStart
	inReasoning
	contentStart
	inContent
)

const endThink = "</think>"

func newReplyShaper(mode generate.Think) *replyShaper {
	r := &replyShaper{mode: mode}
	if mode == generate.ThinkOff {
		r.state = inContent
	}
	return r
}

// add takes the next piece of the answer and returns the reasoning and
// content it completes.
func (r *replyShaper) add(text string) (reasoning, content string) {
	var rb, cb strings.Builder
	text = r.pending + text
	r.pending = ""
	for text != "" {
		switch r.state {
		case expectClose:
			text = strings.TrimPrefix(text, ">")
			if r.mode == generate.ThinkOn {
				r.state = reasoningStart
			} else {
				r.state = contentStart
			}
		case reasoningStart:
			text = strings.TrimLeft(text, " \n")
			if text != "" {
				r.state = inReasoning
			}
		case inReasoning:
			if i := strings.Index(text, endThink); i >= 0 {
				rb.WriteString(text[:i])
				text = text[i+len(endThink):]
				r.state = contentStart
				continue
			}
			keep := partialSuffix(text, endThink)
			rb.WriteString(text[:len(text)-keep])
			r.pending = text[len(text)-keep:]
			text = ""
		case contentStart:
			text = strings.TrimLeft(text, " \n")
			if text != "" {
				r.state = inContent
			}
		case inContent:
			cb.WriteString(text)
			text = ""
		}
	}
	return rb.String(), cb.String()
}

// finish returns what is held back at the end of the answer: an
// unfinished "</think>" is reasoning.
func (r *replyShaper) finish() (reasoning, content string) {
	p := r.pending
	r.pending = ""
	if r.state == inReasoning {
		return p, ""
	}
	return "", p
}

// partialSuffix is the length of the longest suffix of s that is a proper
// prefix of tag.
func partialSuffix(s, tag string) int {
	for n := min(len(s), len(tag)-1); n > 0; n-- {
		if strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}
