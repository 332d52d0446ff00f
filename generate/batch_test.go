package generate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// greedyFixture is tiny/greedy.json: llama.cpp's greedy continuations.
type greedyFixture struct {
	PromptIDs     []int `json:"prompt_ids"`
	Continuations map[string]struct {
		AfterBatch []int  `json:"after_batch_prompt"`
		TextHex    string `json:"text_hex"`
	} `json:"continuations"`
}

func loadGreedy(t *testing.T) greedyFixture {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "tiny", "greedy.json"))
	require.NoError(t, err)
	var g greedyFixture
	require.NoError(t, json.Unmarshal(b, &g))
	return g
}

// cpuModel is a fixture on the CPU reference with its tokenizer.
func cpuModel(t *testing.T, typ string) (*cpuref.Engine, *tokenizer.Tokenizer) {
	t.Helper()
	w := numtest.LoadFixture(t, typ)
	tok, err := model.LoadTokenizer(w.File)
	require.NoError(t, err)
	return cpuref.New(w), tok
}

// TestGenerateMatchesLlamaCpp: greedy generation reproduces llama.cpp's
// continuations of the fixture prompt, all 16 tokens, and its text.
func TestGenerateMatchesLlamaCpp(t *testing.T) {
	g := loadGreedy(t)
	for _, typ := range []string{"F32", "F16"} {
		e, tok := cpuModel(t, typ)
		want := g.Continuations[typ]
		var shown strings.Builder
		res, err := Generate(context.Background(), e, tok, Request{Prompt: g.PromptIDs, MaxTokens: 16,
			Stream: StreamOptions{RawBytes: true}, OnText: func(s string) error { shown.WriteString(s); return nil }})
		require.NoError(t, err)
		require.Equal(t, want.AfterBatch, res.Tokens, typ)
		require.Equal(t, FinishLength, res.Finish)
		text, err := hex.DecodeString(want.TextHex)
		require.NoError(t, err)
		require.Equal(t, string(text), shown.String(), "%s: streamed text", typ)
		require.Equal(t, string(text), res.Text)
	}
}

// stateOf runs ids from the zero state on the CPU reference.
func stateOf(t *testing.T, e model.Engine, ids []int) *model.State {
	t.Helper()
	s, err := e.NewSession()
	require.NoError(t, err)
	defer s.Close()
	_, err = model.Forward(context.Background(), e, s, ids, model.WantNothing)
	require.NoError(t, err)
	st, err := s.State()
	require.NoError(t, err)
	return st
}

// TestGenerationLeavesTheStateOfEverything: after a generation (a token
// limit, a stop string), the session has consumed the prompt and every
// generated token, bit for bit as one prefill of them; a prompt-only
// request (MaxTokens 0) leaves the state of the prompt.
func TestGenerationLeavesTheStateOfEverything(t *testing.T) {
	g := loadGreedy(t)
	e, tok := cpuModel(t, "F32")
	want := g.Continuations["F32"]
	text, err := hex.DecodeString(want.TextHex)
	require.NoError(t, err)
	// A stop string across token boundaries, from the middle of the text.
	stop := string(text[6:10])
	cases := []struct {
		name   string
		req    Request
		finish Finish
	}{
		{"limit", Request{MaxTokens: 5}, FinishLength},
		{"stop string", Request{MaxTokens: 16, Stop: StopRules{Strings: []string{stop}}, Stream: StreamOptions{RawBytes: true}}, FinishStop},
		{"prompt only", Request{MaxTokens: 0}, FinishLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := e.NewSession()
			require.NoError(t, err)
			defer s.Close()
			req := c.req
			req.Prompt, req.Session = g.PromptIDs, s
			res, err := Generate(context.Background(), e, tok, req)
			require.NoError(t, err)
			require.Equal(t, c.finish, res.Finish)
			if c.finish == FinishStop {
				require.Equal(t, stop, res.StopString)
				require.Equal(t, string(text[:6]), res.Text, "the text before the stop string")
			}
			got, err := s.State()
			require.NoError(t, err)
			all := append(append([]int(nil), req.Prompt...), res.Tokens...)
			require.Equal(t, stateOf(t, e, all).Data, got.Data, "state after %d prompt and %d generated tokens", len(req.Prompt), len(res.Tokens))
		})
	}
}

// TestBatchEqualsAlone: six generations of different prompts, lengths and
// samplers in one Batch with a small prefill budget (long prompts fed over
// several steps while others decode) each produce what they produce alone.
func TestBatchEqualsAlone(t *testing.T) {
	g := loadGreedy(t)
	e, tok := cpuModel(t, "Q8_0")
	chat, err := model.Preset("chat")
	require.NoError(t, err)
	var reqs []Request
	for i := 0; i < 6; i++ {
		r := Request{Prompt: g.PromptIDs[i : i+3+7*i], MaxTokens: 4 + 3*i, Stream: StreamOptions{RawBytes: true}}
		if i%2 == 1 {
			p := chat
			p.Seed = uint64(i)
			r.Sampling = &p
		}
		reqs = append(reqs, r)
	}
	var alone []Result
	for _, r := range reqs {
		res, err := Generate(context.Background(), e, tok, r)
		require.NoError(t, err)
		alone = append(alone, res)
	}
	b := NewBatch(e, tok)
	b.PrefillBudget = 8
	var qs []*Seq
	for i, r := range reqs {
		q, err := b.Add(r)
		require.NoError(t, err, "request %d", i)
		qs = append(qs, q)
		// The later ones join while the first decode.
		if i < 3 {
			_, err := b.Step(context.Background())
			require.NoError(t, err)
		}
	}
	for b.Len() > 0 {
		_, err := b.Step(context.Background())
		require.NoError(t, err)
	}
	for i, q := range qs {
		<-q.Done()
		require.Equal(t, alone[i].Tokens, q.Result().Tokens, "request %d", i)
		require.Equal(t, alone[i].Text, q.Result().Text, "request %d", i)
	}
}

// TestCancelEndsAndFeeds: a cancelled generation ends as cancelled, its
// session holding the tokens generated so far.
func TestCancelEndsAndFeeds(t *testing.T) {
	g := loadGreedy(t)
	e, tok := cpuModel(t, "F16")
	s, err := e.NewSession()
	require.NoError(t, err)
	defer s.Close()
	b := NewBatch(e, tok)
	q, err := b.Add(Request{Prompt: g.PromptIDs[:10], Session: s, MaxTokens: 100})
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		_, err := b.Step(context.Background())
		require.NoError(t, err)
	}
	b.Cancel(q)
	for b.Len() > 0 {
		_, err := b.Step(context.Background())
		require.NoError(t, err)
	}
	res := q.Result()
	require.Equal(t, FinishCancelled, res.Finish)
	require.NotEmpty(t, res.Tokens)
	got, err := s.State()
	require.NoError(t, err)
	all := append(append([]int(nil), g.PromptIDs[:10]...), res.Tokens...)
	require.Equal(t, stateOf(t, e, all).Data, got.Data, fmt.Sprintf("state after %d generated tokens", len(res.Tokens)))
}

// TestRequestValidation: bad requests are refused before anything runs.
func TestRequestValidation(t *testing.T) {
	e, tok := cpuModel(t, "F16")
	bad := model.Sampling{Temperature: -1}
	for _, c := range []struct {
		req Request
		msg string
	}{
		{Request{}, "the prompt is empty"},
		{Request{Prompt: []int{1}, MaxTokens: -1}, "MaxTokens -1 is negative"},
		{Request{Prompt: []int{1 << 20}}, "outside the vocabulary"},
		{Request{Prompt: []int{1}, Sampling: &bad}, "emperature"},
		{Request{Prompt: []int{1}, Stop: StopRules{Strings: []string{""}}}, "stop"},
	} {
		_, err := Generate(context.Background(), e, tok, c.req)
		require.ErrorContains(t, err, c.msg)
	}
}
