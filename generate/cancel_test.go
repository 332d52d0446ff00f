package generate

import (
	"context"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/model"

	"github.com/stretchr/testify/require"
)

// TestCancelledGenerationFeedsTheWholePrompt: a generation in the caller's
// session that is cancelled before its prompt is fed (Generate with a
// cancelled context; a Batch cancelled between prefill chunks) still leaves
// the session holding the whole prompt, so that a chat's transcript stays
// true to its state.
func TestCancelledGenerationFeedsTheWholePrompt(t *testing.T) {
	g := loadGreedy(t)
	e, tok := cpuModel(t, "F32")
	prompt := g.PromptIDs[:30]
	want := stateOf(t, e, prompt)

	t.Run("Generate, cancelled before it starts", func(t *testing.T) {
		s, err := e.NewSession()
		require.NoError(t, err)
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := Generate(ctx, e, tok, Request{Prompt: prompt, Session: s, MaxTokens: 10})
		require.NoError(t, err)
		require.Equal(t, FinishCancelled, res.Finish)
		require.Empty(t, res.Tokens)
		got, err := s.State()
		require.NoError(t, err)
		requireSameFloats(t, want.Data, got.Data, "the state of the whole prompt")
	})

	t.Run("Generate, cancelled inside its first step", func(t *testing.T) {
		s, err := e.NewSession()
		require.NoError(t, err)
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The context is cancelled while the prompt's step is submitted:
		// the engine must not see it (it would stop between passes).
		ce := &cancellingEngine{Engine: e, cancel: cancel}
		res, err := Generate(ctx, ce, tok, Request{Prompt: prompt, Session: s, MaxTokens: 10})
		require.NoError(t, err)
		require.Equal(t, FinishCancelled, res.Finish)
		got, err := s.State()
		require.NoError(t, err)
		all := append(append([]int(nil), prompt...), res.Tokens...)
		requireSameFloats(t, stateOf(t, e, all).Data, got.Data, "the state of the prompt and the tokens generated")
	})

	t.Run("Batch, cancelled between prefill chunks", func(t *testing.T) {
		s, err := e.NewSession()
		require.NoError(t, err)
		defer s.Close()
		b := NewBatch(e, tok)
		b.PrefillBudget = 8
		q, err := b.Add(Request{Prompt: prompt, Session: s, MaxTokens: 10})
		require.NoError(t, err)
		_, err = b.Step(context.Background()) // 8 of 30 prompt tokens
		require.NoError(t, err)
		b.Cancel(q)
		steps := 0
		for b.Len() > 0 {
			_, err := b.Step(context.Background())
			require.NoError(t, err)
			steps++
		}
		require.Equal(t, 3, steps, "the other 22 prompt tokens in chunks of 8")
		require.Equal(t, FinishCancelled, q.Result().Finish)
		got, err := s.State()
		require.NoError(t, err)
		requireSameFloats(t, want.Data, got.Data, "the state of the whole prompt")
	})
}

// requireSameFloats fails at the first element where got differs from want,
// naming its index and both values.
func requireSameFloats(t *testing.T, want, got []float32, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("%s: first mismatch at element %d of %d: want %v, got %v", what, i, len(want), want[i], got[i])
		}
	}
}

// cancellingEngine cancels a context when a step is submitted, then submits
// it with the context it was given.
type cancellingEngine struct {
	model.Engine
	cancel context.CancelFunc
}

func (c *cancellingEngine) Submit(ctx context.Context, seqs []model.Seq) (model.Pending, error) {
	c.cancel()
	return c.Engine.Submit(ctx, seqs)
}
