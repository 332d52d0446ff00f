// Package tokenizer is the RWKV World tokenizer: a greedy longest match over
// a byte trie of the vocabulary, as llama.cpp implements it.
//
// It imports nothing of this project; callers hand it the token list.
package tokenizer
