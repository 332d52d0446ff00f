package cpuref

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// The CPU engine computes the sequences of a step one after the other, so
// batched results must equal single-sequence results bit for bit.

func TestStepMixedSequences(t *testing.T) {
	w := numtest.LoadFixture(t, "Q8_0")
	base := numtest.FixturePrompt(t)
	for _, n := range []int{1, 3, 9} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			numtest.CheckMixedSteps(t, New(w), New(w), numtest.Prompts(base, n), 0)
		})
	}
}

func TestStepFork(t *testing.T) {
	w := numtest.LoadFixture(t, "F16")
	numtest.CheckFork(t, New(w), New(w), numtest.FixturePrompt(t)[:20], 0)
}

func TestStepCancelBetweenChunks(t *testing.T) {
	w := numtest.LoadFixture(t, "F16")
	base := numtest.FixturePrompt(t)
	prompt := append(append(append([]int(nil), base...), base...), base[:4]...) // 100 tokens: two chunks
	numtest.CheckCancel(t, New(w), New(w), prompt, 0)
}

func TestStepRejectsBadSteps(t *testing.T) {
	w := numtest.LoadFixture(t, "F16")
	e := New(w)
	s, err := e.NewSession()
	require.NoError(t, err)
	ctx := context.Background()
	cases := []struct {
		name string
		seqs []model.Seq
		msg  string
	}{
		{"empty step", nil, "at least one sequence"},
		{"no session", []model.Seq{{Tokens: []int{1}}}, "sequence 0 has no session"},
		{"same session twice", []model.Seq{{Session: s, Tokens: []int{1}}, {Session: s, Tokens: []int{2}}}, "sequences 0 and 1 use the same session"},
		{"nothing to consume", []model.Seq{{Session: s}}, "sequence 0 has no tokens"},
		{"token out of range", []model.Seq{{Session: s, Tokens: []int{1, w.Config.Vocab}}}, fmt.Sprintf("token %d at position 1", w.Config.Vocab)},
		{"negative token", []model.Seq{{Session: s, Tokens: []int{-1}}}, "token -1 at position 0"},
		{"continue without a chosen token", []model.Seq{{Session: s, Continue: true}}, "no token has been chosen"},
	}
	for _, c := range cases {
		_, err := e.Step(ctx, c.seqs)
		require.ErrorContains(t, err, c.msg, c.name)
	}
	require.NoError(t, s.Close())
	_, err = e.Step(ctx, []model.Seq{{Session: s, Tokens: []int{1}}})
	require.ErrorIs(t, err, model.ErrClosed)
}

func TestStepConcurrentCallers(t *testing.T) {
	w := numtest.LoadFixture(t, "Q8_0")
	numtest.CheckConcurrent(t, New(w), New(w), numtest.Prompts(numtest.FixturePrompt(t), 4), 0)
}
