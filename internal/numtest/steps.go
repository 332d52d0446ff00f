package numtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file holds engine-independent checks of the batched step: each
// drives an engine under test through a schedule of steps and compares
// every sequence with the same sequence run alone, in one call, on a
// reference engine (the CPU reference). tol is the relative L2 error
// allowed per sequence (0: bit for bit).

// streamSeq is one sequence of a schedule: its session, every token it has
// consumed so far, and what the steps returned for it.
type streamSeq struct {
	name    string
	s       model.Session
	inputs  []int // every token consumed, in order
	rows    []row // logits returned, by position
	chosen  []row // tokens chosen (WantToken), by position
	pending bool  // a token was chosen and not yet fed
	last    int   // the token last chosen
	closed  bool
}

// row is what a step returned for one position (the index into inputs of
// the token whose logits these are).
type row struct {
	pos    int
	logits []float32
	token  int
}

// Prompts returns n ragged prompts cut from base (rotated, lengths from 1
// to 2·len(base)/3), so that sequences differ in content and length.
func Prompts(base []int, n int) [][]int {
	out := make([][]int, n)
	for i := range out {
		length := 1 + (7*i+2)%(2*len(base)/3)
		p := make([]int, length)
		for j := range p {
			p[j] = base[(5*i+j)%len(base)]
		}
		out[i] = p
	}
	return out
}

// CheckMixedSteps runs len(prompts) sequences through a schedule that
// mixes prefill and decode in each step, with sequences joining and leaving
// between steps, every kind of Want and chained (Continue) decoding, and
// compares each sequence with ref run alone.
func CheckMixedSteps(t *testing.T, e, ref model.Engine, prompts [][]int, tol float64) {
	t.Helper()
	ctx := context.Background()
	n := len(prompts)
	seqs := make([]*streamSeq, n)
	open := func(i int) {
		s, err := e.NewSession()
		require.NoError(t, err, "NewSession for sequence %d", i)
		seqs[i] = &streamSeq{name: fmt.Sprintf("sequence %d", i), s: s}
	}
	defer func() {
		for _, q := range seqs {
			if q != nil && !q.closed {
				q.s.Close()
			}
		}
	}()
	// Round r: sequence i joins at round i%3 with its prompt; afterwards it
	// decodes one token per round (Continue when the device chose its last
	// token, else the argmax of its last logits fed from the host), and it
	// leaves after round 3 + i%4.
	for round := 0; round < 7; round++ {
		var step []model.Seq
		var who []*streamSeq
		for i := range n {
			join, leave := i%3, 3+i%4
			switch {
			case round < join || seqs[i] != nil && seqs[i].closed:
				continue
			case round > leave:
				require.NoError(t, seqs[i].s.Close())
				require.NoError(t, seqs[i].s.Close(), "closing twice")
				seqs[i].closed = true
				continue
			case round == join:
				open(i)
				want := []model.Want{model.WantLast, model.WantAll, model.WantToken, model.WantNothing}[i%4]
				step = append(step, model.Seq{Session: seqs[i].s, Tokens: prompts[i], Want: want})
			default:
				q := seqs[i]
				want := model.WantToken
				if (round+i)%3 == 0 {
					want = model.WantLast
				}
				sq := model.Seq{Session: q.s, Want: want}
				switch {
				case q.pending:
					sq.Continue = true
				case len(q.rows) > 0:
					sq.Tokens = []int{model.Argmax(q.rows[len(q.rows)-1].logits)}
				default: // joined with WantNothing: feed its first prompt token again
					sq.Tokens = []int{prompts[i][0]}
				}
				step = append(step, sq)
			}
			who = append(who, seqs[i])
		}
		if len(step) == 0 {
			continue
		}
		res, err := e.Step(ctx, step)
		require.NoError(t, err, "round %d", round)
		require.Len(t, res, len(step))
		for k, sq := range step {
			q := who[k]
			if sq.Continue {
				sq.Tokens = append(append([]int(nil), sq.Tokens...), q.last)
				q.pending = false
			}
			require.Equal(t, len(sq.Tokens), res[k].Consumed, "%s round %d: consumed", q.name, round)
			first := len(q.inputs)
			q.inputs = append(q.inputs, sq.Tokens...)
			last := len(q.inputs) - 1
			V := e.Config().Vocab
			switch sq.Want {
			case model.WantAll:
				require.Len(t, res[k].Logits, len(sq.Tokens)*V, "%s round %d: logits", q.name, round)
				for p := first; p <= last; p++ {
					q.rows = append(q.rows, row{pos: p, logits: res[k].Logits[(p-first)*V : (p-first+1)*V]})
				}
			case model.WantLast:
				require.Len(t, res[k].Logits, V, "%s round %d: logits", q.name, round)
				q.rows = append(q.rows, row{pos: last, logits: res[k].Logits})
			case model.WantToken:
				require.Nil(t, res[k].Logits)
				q.chosen = append(q.chosen, row{pos: last, token: res[k].Token})
				q.pending, q.last = true, res[k].Token
			default:
				require.Nil(t, res[k].Logits)
			}
		}
	}
	for _, q := range seqs {
		compareAlone(t, ref, q, tol)
	}
}

// compareAlone runs q's whole input on ref in one call and compares every
// row q received, and every token chosen for it (the argmax of ref's
// logits at that position).
func compareAlone(t *testing.T, ref model.Engine, q *streamSeq, tol float64) {
	t.Helper()
	if q == nil || len(q.inputs) == 0 {
		return
	}
	V := ref.Config().Vocab
	want := refLogits(t, ref, q.inputs)
	var got, exp []float32
	for _, r := range q.rows {
		got = append(got, r.logits...)
		exp = append(exp, want[r.pos*V:(r.pos+1)*V]...)
	}
	if len(got) > 0 {
		checkRows(t, q.name, got, exp, V, tol)
	}
	for _, c := range q.chosen {
		if w := model.Argmax(want[c.pos*V : (c.pos+1)*V]); w != c.token {
			t.Errorf("%s: token chosen at position %d is %d, the reference's argmax is %d", q.name, c.pos, c.token, w)
		}
	}
	t.Logf("%s: %d tokens consumed, %d logits rows and %d chosen tokens checked", q.name, len(q.inputs), len(q.rows), len(q.chosen))
}

func refLogits(t *testing.T, ref model.Engine, ids []int) []float32 {
	t.Helper()
	s, err := ref.NewSession()
	require.NoError(t, err)
	defer s.Close()
	l, err := model.Forward(context.Background(), ref, s, ids, model.WantAll)
	require.NoError(t, err)
	return l
}

// checkRows compares bit for bit when tol is 0, else by CheckLogits.
func checkRows(t *testing.T, what string, got, want []float32, V int, tol float64) {
	t.Helper()
	if tol > 0 {
		CheckLogits(t, what, got, want, V, tol)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: not bit-identical: first difference %s", what, Describe(got, want, i, V))
			return
		}
	}
}

// CheckFork checks that a forked session continues exactly as its parent
// would, and that the parent is unaffected: both take different tokens
// after the fork, and both equal ref run alone on their whole input. The
// fork also inherits the token chosen on the device.
func CheckFork(t *testing.T, e, ref model.Engine, prompt []int, tol float64) {
	t.Helper()
	ctx := context.Background()
	V := e.Config().Vocab
	parent, err := e.NewSession()
	require.NoError(t, err)
	defer parent.Close()
	res, err := e.Step(ctx, []model.Seq{{Session: parent, Tokens: prompt, Want: model.WantToken}})
	require.NoError(t, err)
	chosen := res[0].Token
	child, err := parent.Fork()
	require.NoError(t, err)
	defer child.Close()
	// Both continue with the chosen token (on the device), then parent
	// takes token 1 and the child token 2.
	res, err = e.Step(ctx, []model.Seq{
		{Session: parent, Continue: true, Tokens: nil, Want: model.WantLast},
		{Session: child, Continue: true, Want: model.WantLast},
	})
	require.NoError(t, err)
	checkRows(t, "parent and fork after the fork", res[1].Logits, res[0].Logits, V, tol)
	pl, err := model.Forward(ctx, e, parent, []int{1}, model.WantLast)
	require.NoError(t, err)
	cl, err := model.Forward(ctx, e, child, []int{2}, model.WantLast)
	require.NoError(t, err)
	base := append(append([]int(nil), prompt...), chosen)
	pw := refLogits(t, ref, append(append([]int(nil), base...), 1))
	cw := refLogits(t, ref, append(append([]int(nil), base...), 2))
	checkRows(t, "parent after the fork", pl, pw[len(base)*V:], V, tol)
	checkRows(t, "fork", cl, cw[len(base)*V:], V, tol)
}

// cancelAfter is a context whose Err reports cancellation once it has been
// asked more than n times: an engine checking it between passes stops
// after n passes.
type cancelAfter struct {
	context.Context
	n, calls atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) > c.n.Load() {
		return context.Canceled
	}
	return nil
}

// CheckCancel starts a prefill of prompt (longer than the engine's pass)
// with a context that is cancelled after the first pass, checks that the
// step stops with a StepError saying how many tokens were consumed (fewer
// than all, more than none), that the session's state is then that of
// those tokens, and that feeding the rest continues exactly.
func CheckCancel(t *testing.T, e, ref model.Engine, prompt []int, tol float64) {
	t.Helper()
	V := e.Config().Vocab
	s, err := e.NewSession()
	require.NoError(t, err)
	defer s.Close()
	ctx := &cancelAfter{Context: context.Background()}
	ctx.n.Store(1)
	_, err = e.Step(ctx, []model.Seq{{Session: s, Tokens: prompt, Want: model.WantLast}})
	require.ErrorIs(t, err, context.Canceled)
	var se *model.StepError
	require.True(t, errors.As(err, &se), "the error is a *model.StepError: %v", err)
	done := se.Results[0].Consumed
	require.Greater(t, done, 0, "tokens consumed before the cancellation")
	require.Less(t, done, len(prompt), "tokens consumed before the cancellation")
	rest, err := model.Forward(context.Background(), e, s, prompt[done:], model.WantAll)
	require.NoError(t, err)
	want := refLogits(t, ref, prompt)
	checkRows(t, fmt.Sprintf("after cancelling at %d of %d tokens, the rest", done, len(prompt)), rest, want[done*V:], V, tol)
}

// CheckConcurrent runs one goroutine per prompt, each with its own session:
// a prefill that picks a token, four chained decode steps (Submit, then
// Wait one step behind), and a last step returning logits; all goroutines
// step the engine at the same time. Each sequence's tokens must be ref's
// greedy choices and its last logits ref's, as if it had run alone.
func CheckConcurrent(t *testing.T, e, ref model.Engine, prompts [][]int, tol float64) {
	t.Helper()
	type out struct {
		tokens []int
		logits []float32
		err    error
	}
	outs := make([]out, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = runChain(e, p)
		}()
	}
	wg.Wait()
	V := e.Config().Vocab
	for i, p := range prompts {
		o := outs[i]
		require.NoError(t, o.err, "sequence %d", i)
		ids := append([]int(nil), p...)
		want := refLogits(t, ref, ids)
		for k, tok := range o.tokens {
			last := want[len(want)-V:]
			if w := model.Argmax(last); w != tok {
				t.Fatalf("sequence %d: decode step %d chose %d, the reference %d", i, k, tok, w)
			}
			ids = append(ids, tok)
			want = refLogits(t, ref, ids)
		}
		checkRows(t, fmt.Sprintf("sequence %d, last logits", i), o.logits, want[len(want)-V:], V, tol)
	}
}

// runChain is one goroutine of CheckConcurrent.
func runChain(e model.Engine, prompt []int) (o struct {
	tokens []int
	logits []float32
	err    error
}) {
	ctx := context.Background()
	s, err := e.NewSession()
	if err != nil {
		o.err = err
		return o
	}
	defer s.Close()
	p, err := e.Submit(ctx, []model.Seq{{Session: s, Tokens: prompt, Want: model.WantToken}})
	for k := 0; err == nil && k < 5; k++ {
		want := model.WantToken
		if k == 4 {
			want = model.WantLast
		}
		var next model.Pending
		if next, err = e.Submit(ctx, []model.Seq{{Session: s, Continue: true, Want: want}}); err != nil {
			break
		}
		var r []model.SeqResult
		if r, err = p.Wait(); err != nil {
			break
		}
		o.tokens = append(o.tokens, r[0].Token)
		p = next
	}
	if err == nil {
		var r []model.SeqResult
		if r, err = p.Wait(); err == nil {
			o.logits = r[0].Logits
		}
	}
	o.err = err
	return o
}
