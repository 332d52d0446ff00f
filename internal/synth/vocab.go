package synth

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// worldVocabGz holds the 65 536 entries of the RWKV World vocabulary as
// llama.cpp's converter stores them in tokenizer.ggml.tokens (escaped byte
// strings, <s> at id 0, [PAD65530]..[PAD65535] at the end), one per line.
//
//go:embed world_vocab.txt.gz
var worldVocabGz []byte

var worldVocab = sync.OnceValues(func() ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(worldVocabGz))
	if err != nil {
		return nil, fmt.Errorf("synth: embedded vocabulary: %w", err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("synth: embedded vocabulary: %w", err)
	}
	tokens := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(tokens) != WorldVocabSize {
		return nil, fmt.Errorf("synth: embedded vocabulary has %d entries, expected %d", len(tokens), WorldVocabSize)
	}
	return tokens, nil
})

// Vocab returns the first n entries of the World vocabulary (escaped, as
// stored in tokenizer.ggml.tokens) and their token types: control for id 0
// (<s>), unused for the [PADn] entries, normal otherwise. n must be in
// [1, 65536].
func Vocab(n int) ([]string, []int32, error) {
	if n < 1 || n > WorldVocabSize {
		return nil, nil, fmt.Errorf("synth: vocabulary size %d is outside [1, %d]", n, WorldVocabSize)
	}
	all, err := worldVocab()
	if err != nil {
		return nil, nil, err
	}
	tokens := slices.Clone(all[:n]) // callers may modify their copy
	types := make([]int32, n)
	for i, t := range tokens {
		switch {
		case i == 0:
			types[i] = int32(tokenizer.TypeControl)
		case strings.HasPrefix(t, "[PAD"):
			types[i] = int32(tokenizer.TypeUnused)
		default:
			types[i] = int32(tokenizer.TypeNormal)
		}
	}
	return tokens, types, nil
}
