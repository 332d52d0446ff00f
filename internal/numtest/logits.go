package numtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// SeqLogits runs ids through a fresh session one token per call and returns
// the logits of every position, [T][V].
func SeqLogits(t testing.TB, e model.Engine, ids []int) []float32 {
	t.Helper()
	s, err := e.NewSession()
	require.NoError(t, err)
	defer s.Close()
	var out []float32
	for _, id := range ids {
		l, err := model.Forward(context.Background(), e, s, []int{id}, model.WantLast)
		require.NoError(t, err)
		out = append(out, l...)
	}
	return out
}

// BatchLogits runs ids through a fresh session as one prefill and returns
// the logits of every position, [T][V].
func BatchLogits(t testing.TB, e model.Engine, ids []int) []float32 {
	t.Helper()
	s, err := e.NewSession()
	require.NoError(t, err)
	defer s.Close()
	out, err := model.Forward(context.Background(), e, s, ids, model.WantAll)
	require.NoError(t, err)
	return out
}

// CheckLogits fails t (without stopping it) when got, [T][V], is further than
// tol in relative L2 from ref, has non-finite values, or picks another argmax
// at some position; the report names the first mismatching position and
// index with both values. It returns the comparison.
func CheckLogits(t testing.TB, what string, got, ref []float32, V int, tol float64) Stats {
	t.Helper()
	require.Len(t, got, len(ref), what)
	s := Compare(got, ref)
	if s.NonFinite > 0 || s.RelL2 > tol {
		i := FirstMismatch(got, ref, 0, tol)
		if i < 0 {
			i = s.MaxAbsAt
		}
		t.Errorf("%s: relative L2 error %.3g > %.3g (max abs %.3g, %d non-finite); first mismatch %s",
			what, s.RelL2, tol, s.MaxAbs, s.NonFinite, Describe(got, ref, i, V))
	}
	if rows := RowArgmaxMismatches(got, ref, V); len(rows) > 0 {
		t.Errorf("%s: argmax differs at positions %v", what, rows)
	}
	return s
}
