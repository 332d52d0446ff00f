// Package streams drives an engine with many sequences at once through a
// schedule of batched steps (prefill and decode mixed in each step,
// sequences joining and leaving, every kind of model.Want, chained
// decoding) and compares every sequence with the same sequence run alone
// on a reference engine. The engine tests and `rwkv verify --streams` use
// it.
package streams

import (
	"context"
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Stream is one sequence of a schedule: every token it consumed, and what
// the steps returned for it.
type Stream struct {
	Name   string
	Inputs []int // every token consumed, in order
	Rows   []Row // logits returned, by position
	Chosen []Row // tokens chosen on the device (WantToken), by position

	s       model.Session
	pending bool // a token was chosen and not yet fed
	last    int  // the token last chosen
	closed  bool
}

// Row is what a step returned for one position of a stream: the logits of
// the token at Inputs[Pos], or the token chosen from them.
type Row struct {
	Pos    int
	Logits []float32
	Token  int
}

// Prompts returns n ragged prompts cut from base (rotated, lengths from 1
// to 2·len(base)/3), so that sequences differ in content and length.
func Prompts(base []int, n int) [][]int {
	out := make([][]int, n)
	for i := range out {
		length := 1 + (7*i+2)%max(1, 2*len(base)/3)
		p := make([]int, length)
		for j := range p {
			p[j] = base[(5*i+j)%len(base)]
		}
		out[i] = p
	}
	return out
}

// Rounds is the number of steps of the schedule.
const Rounds = 7

// Run drives e with one sequence per prompt for Rounds steps. In round r,
// sequence i joins at round i%3 with its whole prompt (asking, by i%4, for
// its last logits, all logits, a token, or nothing), then decodes one token
// per round (Continue when the device chose its last token, else the
// argmax of its last logits fed from the host; every third round it asks
// for logits instead of a token), and leaves after round 3 + i%4.
func Run(ctx context.Context, e model.Engine, prompts [][]int) ([]*Stream, error) {
	n := len(prompts)
	streams := make([]*Stream, n)
	defer func() {
		for _, q := range streams {
			if q != nil && !q.closed {
				q.s.Close()
			}
		}
	}()
	for round := 0; round < Rounds; round++ {
		var step []model.Seq
		var who []*Stream
		for i := range n {
			join, leave := i%3, 3+i%4
			switch {
			case round < join || streams[i] != nil && streams[i].closed:
				continue
			case round > leave:
				if err := streams[i].s.Close(); err != nil {
					return nil, err
				}
				streams[i].closed = true
				continue
			case round == join:
				s, err := e.NewSession()
				if err != nil {
					return nil, fmt.Errorf("sequence %d: %w", i, err)
				}
				streams[i] = &Stream{Name: fmt.Sprintf("sequence %d", i), s: s}
				want := []model.Want{model.WantLast, model.WantAll, model.WantToken, model.WantNothing}[i%4]
				step = append(step, model.Seq{Session: s, Tokens: prompts[i], Want: want})
			default:
				q := streams[i]
				want := model.WantToken
				if (round+i)%3 == 0 {
					want = model.WantLast
				}
				sq := model.Seq{Session: q.s, Want: want}
				switch {
				case q.pending:
					sq.Continue = true
				case len(q.Rows) > 0:
					sq.Tokens = []int{model.Argmax(q.Rows[len(q.Rows)-1].Logits)}
				default: // joined with WantNothing: feed its first prompt token again
					sq.Tokens = []int{prompts[i][0]}
				}
				step = append(step, sq)
			}
			who = append(who, streams[i])
		}
		if len(step) == 0 {
			continue
		}
		res, err := e.Step(ctx, step)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		if err := record(e.Config().Vocab, round, step, who, res); err != nil {
			return nil, err
		}
	}
	out := make([]*Stream, 0, n)
	for _, q := range streams {
		if q != nil {
			out = append(out, q)
		}
	}
	return out, nil
}

// record files a step's results under the streams they belong to.
func record(V, round int, step []model.Seq, who []*Stream, res []model.SeqResult) error {
	if len(res) != len(step) {
		return fmt.Errorf("round %d: %d results for %d sequences", round, len(res), len(step))
	}
	for k, sq := range step {
		q, r := who[k], res[k]
		tokens := sq.Tokens
		if sq.Continue {
			tokens = append(append([]int(nil), tokens...), q.last)
			q.pending = false
		}
		if r.Consumed != len(tokens) {
			return fmt.Errorf("%s round %d: consumed %d of %d tokens", q.Name, round, r.Consumed, len(tokens))
		}
		first := len(q.Inputs)
		q.Inputs = append(q.Inputs, tokens...)
		last := len(q.Inputs) - 1
		want := map[model.Want]int{model.WantAll: len(tokens) * V, model.WantLast: V}[sq.Want]
		if len(r.Logits) != want {
			return fmt.Errorf("%s round %d: %d logits for %v, expected %d", q.Name, round, len(r.Logits), sq.Want, want)
		}
		switch sq.Want {
		case model.WantAll:
			for p := first; p <= last; p++ {
				q.Rows = append(q.Rows, Row{Pos: p, Logits: r.Logits[(p-first)*V : (p-first+1)*V]})
			}
		case model.WantLast:
			q.Rows = append(q.Rows, Row{Pos: last, Logits: r.Logits})
		case model.WantToken:
			if r.Token < 0 || r.Token >= V {
				return fmt.Errorf("%s round %d: chosen token %d outside the vocabulary", q.Name, round, r.Token)
			}
			q.Chosen = append(q.Chosen, Row{Pos: last, Token: r.Token})
			q.pending, q.last = true, r.Token
		}
	}
	return nil
}

// Comparison is one stream against the reference run alone.
type Comparison struct {
	Name   string
	Tokens int          // tokens the stream consumed
	Rows   int          // logits rows compared
	Stats  numcmp.Stats // over all rows
	// ArgmaxDiffs lists the positions whose logits pick another argmax
	// than the reference's, or whose chosen token differs from it.
	ArgmaxDiffs []int
	// First describes the largest difference (empty when bit-identical).
	First string
	// Identical is true when every logits row equals the reference's bit
	// for bit and every chosen token is the reference's argmax.
	Identical bool
}

// Compare runs the stream's whole input on ref in one call and compares
// every row the stream received, and every token chosen for it (the
// argmax of ref's logits at that position).
func Compare(ctx context.Context, ref model.Engine, q *Stream) (Comparison, error) {
	c := Comparison{Name: q.Name, Tokens: len(q.Inputs), Rows: len(q.Rows), Identical: true}
	if len(q.Inputs) == 0 {
		return c, nil
	}
	V := ref.Config().Vocab
	s, err := ref.NewSession()
	if err != nil {
		return c, err
	}
	defer s.Close()
	want, err := model.Forward(ctx, ref, s, q.Inputs, model.WantAll)
	if err != nil {
		return c, fmt.Errorf("%s on the reference: %w", q.Name, err)
	}
	var got, exp []float32
	for _, r := range q.Rows {
		w := want[r.Pos*V : (r.Pos+1)*V]
		got, exp = append(got, r.Logits...), append(exp, w...)
		if model.Argmax(r.Logits) != model.Argmax(w) {
			c.ArgmaxDiffs = append(c.ArgmaxDiffs, r.Pos)
		}
	}
	for _, r := range q.Chosen {
		if model.Argmax(want[r.Pos*V:(r.Pos+1)*V]) != r.Token {
			c.ArgmaxDiffs = append(c.ArgmaxDiffs, r.Pos)
		}
	}
	if len(got) > 0 {
		c.Stats = numcmp.Compare(got, exp)
		if i := numcmp.FirstMismatch(got, exp, 0, 0); i >= 0 {
			c.Identical = false
			i := c.Stats.MaxAbsAt
			c.First = fmt.Sprintf("position %d, logit %d: got %.9g, want %.9g", q.Rows[i/V].Pos, i%V, got[i], exp[i])
		}
	}
	if len(c.ArgmaxDiffs) > 0 {
		c.Identical = false
	}
	return c, nil
}
