package serve

import (
	"net/http"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// FuzzServeParse: any body either becomes a job the scheduler can run (a
// non-empty prompt within the limit and the vocabulary, max_tokens in
// range, a valid sampler and stop rules) or a 400 with a message; nothing
// panics.
func FuzzServeParse(f *testing.F) {
	for _, seed := range []string{
		`{"messages":[{"role":"user","content":"hi"}],"temperature":0.7,"stop":["a"],"max_tokens":5}`,
		`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"}]}],"reasoning_effort":"high","top_k":5}`,
		`{"prompt":[1,2,3],"max_tokens":2,"seed":-4,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"prompt":["abc"],"presence_penalty":2,"frequency_penalty":-2,"penalty_decay":0}`,
		`{"messages":[{"role":"assistant","content":null},{"role":"user","content":""}]}`,
		`{"prompt":[[5,6]]}`, `{`, `null`, `{"messages":[]}`, `{"max_tokens":1e400}`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	w := numtest.LoadFixture(f, "F32")
	tok, err := model.LoadTokenizer(w.File)
	if err != nil {
		f.Fatal(err)
	}
	p := &parser{tok: tok, vocab: tok.VocabSize(), maxPrompt: 256, maxCompletion: 64, defaultCompletion: 16, seed: func() uint64 { return 1 }}
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		parse := p.completion
		if chat {
			parse = p.chat
		}
		spec, e := parse(body)
		if e != nil {
			if spec != nil || e.Status != http.StatusBadRequest || e.Message == "" || e.Type != typeInvalidRequest {
				t.Fatalf("a refusal must be a 400 with a message and no job: %+v, %v", e, spec)
			}
			return
		}
		if len(spec.prompt) == 0 || len(spec.prompt) > p.maxPrompt {
			t.Fatalf("prompt of %d tokens accepted (limit %d)", len(spec.prompt), p.maxPrompt)
		}
		if err := model.CheckTokens(spec.prompt, p.vocab); err != nil {
			t.Fatal(err)
		}
		if spec.maxTokens < 1 || spec.maxTokens > p.maxCompletion {
			t.Fatalf("max tokens %d accepted", spec.maxTokens)
		}
		if err := spec.sampling.Validate(p.vocab); err != nil {
			t.Fatal(err)
		}
		if err := spec.stop.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
