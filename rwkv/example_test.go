package rwkv_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/synth"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/rwkv"
)

// Open a model, tokenize a prompt, run it and decode greedily: each step
// feeds the token the previous one chose on the device. (The model here is
// a tiny synthetic one with random weights, so its text is noise.)
func Example() {
	m, err := rwkv.Open(exampleModel(), rwkv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ids, err := m.Tokenizer.Encode([]byte("User: hello\n\nAssistant:"))
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.Engine.NewSession()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	step := model.Seq{Session: s, Tokens: ids, Want: model.WantToken}
	var out []int
	for len(out) < 8 {
		r, err := m.Engine.Step(ctx, []model.Seq{step})
		if err != nil {
			log.Fatal(err)
		}
		out = append(out, r[0].Token)
		step = model.Seq{Session: s, Continue: true, Want: model.WantToken}
	}
	text, err := m.Tokenizer.Decode(out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d prompt tokens, then %q\n", len(ids), text)
	// Output:
	// 20 prompt tokens, then "\xec\",\xfe24)/\x8f:, b"
}

// exampleModel writes the tiny synthetic model (to the same temporary
// file each time) and returns its path.
func exampleModel() string {
	dir := os.TempDir()
	preset, err := synth.PresetByName("tiny")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "rwkv-example-tiny.gguf")
	if err := synth.Write(path, synth.Options{Preset: preset, Type: gguf.F16, Seed: 1}); err != nil {
		log.Fatal(err)
	}
	return path
}
