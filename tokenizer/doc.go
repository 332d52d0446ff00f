// Package tokenizer is the RWKV World tokenizer: a greedy longest match over
// a byte trie of the vocabulary, as llama.cpp implements it
// (spec/tokenizer.md §1–§4).
//
// It imports nothing of this project and knows nothing of GGUF; callers hand
// it the token list. From a GGUF file, pass tokenizer.ggml.tokens (escaped
// strings) and tokenizer.ggml.token_type to FromEscaped; with raw bytes, use
// New. Escape and Unescape convert between the two forms.
//
// Encode works on raw bytes and, like llama.cpp, matches every token of the
// vocabulary, so the text "<s>" becomes id 0 and "[PAD65531]" id 65531 in a
// World vocabulary. It adds no BOS or EOS. With a vocabulary that lacks some
// single bytes it returns a *NoTokenError instead of llama.cpp's id -1.
//
// Decode drops control and unknown tokens (llama.cpp with special=false).
// Tokens are bytes, not characters: a token may start or end inside a UTF-8
// sequence, so a program printing tokens as they are generated should use a
// StreamDecoder, which holds back an incomplete trailing sequence.
//
// A Tokenizer is immutable and safe for concurrent use.
package tokenizer
