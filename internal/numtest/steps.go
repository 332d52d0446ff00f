package numtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/streams"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file holds engine-independent checks of the batched step: each
// drives an engine under test through a schedule of steps and compares
// every sequence with the same sequence run alone, in one call, on a
// reference engine (the CPU reference). tol is the relative L2 error
// allowed per sequence (0: bit for bit).

// Prompts returns n ragged prompts cut from base (see streams.Prompts).
func Prompts(base []int, n int) [][]int { return streams.Prompts(base, n) }

// CheckMixedSteps runs len(prompts) sequences through streams.Run's
// schedule (prefill and decode mixed in each step, sequences joining and
// leaving, every kind of Want, chained decoding) and compares each sequence
// with ref run alone: bit for bit when tol is 0, else within tol relative
// L2 with every argmax equal.
func CheckMixedSteps(t *testing.T, e, ref model.Engine, prompts [][]int, tol float64) {
	t.Helper()
	ctx := context.Background()
	got, err := streams.Run(ctx, e, prompts)
	require.NoError(t, err)
	require.Len(t, got, len(prompts))
	for _, q := range got {
		c, err := streams.Compare(ctx, ref, q)
		require.NoError(t, err)
		if tol == 0 && !c.Identical {
			t.Errorf("%s: not bit-identical to the sequence alone: %s; argmax differs at %v", c.Name, c.First, c.ArgmaxDiffs)
		}
		if c.Stats.RelL2 > tol || c.Stats.NonFinite > 0 || len(c.ArgmaxDiffs) > 0 {
			t.Errorf("%s: relative L2 %.3g (tolerance %.3g), %d non-finite, argmax differs at %v; largest difference %s",
				c.Name, c.Stats.RelL2, tol, c.Stats.NonFinite, c.ArgmaxDiffs, c.First)
		}
		t.Logf("%s: %d tokens consumed, %d logits rows and %d chosen tokens checked, rel L2 %.2g", c.Name, c.Tokens, c.Rows, len(q.Chosen), c.Stats.RelL2)
	}
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
