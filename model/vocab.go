package model

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// LoadTokenizer builds the RWKV World tokenizer from a GGUF file's
// tokenizer.ggml.tokens (escaped byte strings) and tokenizer.ggml.token_type.
func LoadTokenizer(f *gguf.File) (*tokenizer.Tokenizer, error) {
	if m, err := f.String(KeyTokenizer); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	} else if m != "rwkv" {
		return nil, fmt.Errorf("model: %s: %s is %q, expected \"rwkv\" (the RWKV World tokenizer)", f.Path, KeyTokenizer, m)
	}
	tokens, err := f.Strings(KeyTokens)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var types []int32
	if _, ok := f.Get(KeyTokenTypes); ok {
		if types, err = f.Int32s(KeyTokenTypes); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		if len(types) != len(tokens) {
			return nil, fmt.Errorf("model: %s: %s has %d entries, %s has %d", f.Path, KeyTokenTypes, len(types), KeyTokens, len(tokens))
		}
	}
	tok, err := tokenizer.FromEscaped(tokens, types)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", f.Path, err)
	}
	return tok, nil
}
