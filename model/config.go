package model

import (
	"errors"
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// Architecture is the general.architecture value of an RWKV-7 GGUF file.
const Architecture = "rwkv7"

// Fixed constants of the RWKV-7 forward pass that are not stored in the file
// (spec/rwkv7.md §1).
const (
	// GroupNormEps is the epsilon of the per-head group norm (ln_x).
	GroupNormEps float32 = 64e-5
	// L2NormFloor is the lower bound of ‖κ‖ in the key normalisation.
	L2NormFloor float32 = 1e-12
	// DecayScale is c_w in w = exp(−c_w·σ(w_raw)).
	DecayScale float32 = 0.606531
)

// Config holds the hyperparameters of an RWKV-7 model.
type Config struct {
	Name     string  // general.name, for display
	Layers   int     // L: rwkv7.block_count
	Dim      int     // D: rwkv7.embedding_length
	HeadSize int     // N: rwkv7.wkv.head_size
	Heads    int     // H = D / N
	FFN      int     // F: rwkv7.feed_forward_length
	RankW    int     // decay LoRA rank
	RankA    int     // in-context learning rate LoRA rank
	RankV    int     // value-residual LoRA rank
	RankG    int     // gate LoRA rank
	Vocab    int     // V: length of tokenizer.ggml.tokens
	Eps      float32 // layer-norm epsilon of ln0, ln1, ln2 and ln_out
}

// Metadata keys read by ConfigFromGGUF.
const (
	KeyArchitecture = "general.architecture"
	KeyName         = "general.name"
	KeyBlockCount   = "rwkv7.block_count"
	KeyEmbedding    = "rwkv7.embedding_length"
	KeyFFN          = "rwkv7.feed_forward_length"
	KeyHeadSize     = "rwkv7.wkv.head_size"
	KeyEps          = "rwkv7.attention.layer_norm_epsilon"
	KeyRankW        = "rwkv7.attention.decay_lora_rank"
	KeyRankA        = "rwkv7.attention.iclr_lora_rank"
	KeyRankV        = "rwkv7.attention.value_residual_mix_lora_rank"
	KeyRankG        = "rwkv7.attention.gate_lora_rank"
	KeyShiftCount   = "rwkv7.token_shift_count"
	KeyContext      = "rwkv7.context_length"
	KeyHeadCount    = "rwkv7.attention.head_count"
	KeyTokens       = "tokenizer.ggml.tokens"
	KeyTokenTypes   = "tokenizer.ggml.token_type"
	KeyTokenizer    = "tokenizer.ggml.model"
)

// ConfigFromGGUF reads the hyperparameters of an rwkv7 file. Every required
// key must be present with its documented type; the vocabulary size comes
// from the token list, not from a key.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.String(KeyArchitecture)
	if err != nil {
		return c, fmt.Errorf("model: %w", err)
	}
	if arch != Architecture {
		return c, fmt.Errorf("model: %s: general.architecture is %q, expected %q", f.Path, arch, Architecture)
	}
	if name, err := f.String(KeyName); err == nil {
		c.Name = name
	}
	ints := []struct {
		key string
		dst *int
		min int
	}{
		{KeyBlockCount, &c.Layers, 1},
		{KeyEmbedding, &c.Dim, 1},
		{KeyFFN, &c.FFN, 1},
		{KeyHeadSize, &c.HeadSize, 1},
		{KeyRankW, &c.RankW, 1},
		{KeyRankA, &c.RankA, 1},
		{KeyRankV, &c.RankV, 1},
		{KeyRankG, &c.RankG, 1},
	}
	for _, k := range ints {
		v, err := f.Uint32(k.key)
		if err != nil && k.key == KeyFFN {
			// llama.cpp also accepts a per-layer array and uses element 0.
			if arr, aerr := f.Uint32s(k.key); aerr == nil && len(arr) > 0 {
				v, err = arr[0], nil
			}
		}
		if err != nil {
			return c, fmt.Errorf("model: %w", err)
		}
		if int64(v) < int64(k.min) || v > 1<<20 {
			return c, fmt.Errorf("model: %s: %s = %d is out of range [%d, %d]", f.Path, k.key, v, k.min, 1<<20)
		}
		*k.dst = int(v)
	}
	c.Eps, err = f.Float32(KeyEps)
	if err != nil {
		if errors.Is(err, gguf.ErrKeyNotFound) {
			return c, fmt.Errorf("model: %s: %s is missing (llama.cpp would silently use 0; converters always write it): %w", f.Path, KeyEps, err)
		}
		return c, fmt.Errorf("model: %w", err)
	}
	if !(c.Eps >= 0 && c.Eps < 1) {
		return c, fmt.Errorf("model: %s: %s = %g is not in [0, 1)", f.Path, KeyEps, c.Eps)
	}
	if n, err := f.Uint32(KeyShiftCount); err == nil && n != 2 {
		return c, fmt.Errorf("model: %s: %s = %d, expected 2", f.Path, KeyShiftCount, n)
	}
	if c.Dim%c.HeadSize != 0 {
		return c, fmt.Errorf("model: %s: embedding_length %d is not a multiple of head_size %d", f.Path, c.Dim, c.HeadSize)
	}
	c.Heads = c.Dim / c.HeadSize
	tokens, ok := f.Get(KeyTokens)
	if !ok {
		return c, fmt.Errorf("model: %s: %s is missing: the vocabulary size comes from the token list: %w", f.Path, KeyTokens, gguf.ErrKeyNotFound)
	}
	c.Vocab = tokens.Len()
	if c.Vocab < 1 {
		return c, fmt.Errorf("model: %s: %s is empty", f.Path, KeyTokens)
	}
	return c, nil
}

// StateFloats is the number of float32 values of one sequence's recurrent
// state: per layer two shift vectors of D and H matrices of N×N.
func (c Config) StateFloats() int { return c.Layers * c.LayerStateFloats() }

// LayerStateFloats is the number of float32 values of one layer's state.
func (c Config) LayerStateFloats() int { return 2*c.Dim + c.Dim*c.HeadSize }

// StateBytes is the size in bytes of one sequence's recurrent state.
func (c Config) StateBytes() int64 { return 4 * int64(c.StateFloats()) }

// String describes the configuration in one line.
func (c Config) String() string {
	return fmt.Sprintf("L=%d D=%d N=%d H=%d F=%d ranks w/a/v/g=%d/%d/%d/%d V=%d eps=%g",
		c.Layers, c.Dim, c.HeadSize, c.Heads, c.FFN, c.RankW, c.RankA, c.RankV, c.RankG, c.Vocab, c.Eps)
}

// SetConfigKeys writes the rwkv7.* hyperparameter keys of c into w, in the
// order and with the types llama.cpp's converter writes them
// (context_length 1048576 and head_count 0 as it does).
func SetConfigKeys(w *gguf.Writer, c Config) {
	w.SetUint32(KeyContext, 1048576)
	w.SetUint32(KeyEmbedding, uint32(c.Dim))
	w.SetUint32(KeyBlockCount, uint32(c.Layers))
	w.SetFloat32(KeyEps, c.Eps)
	w.SetUint32(KeyHeadSize, uint32(c.HeadSize))
	w.SetUint32(KeyRankW, uint32(c.RankW))
	w.SetUint32(KeyRankA, uint32(c.RankA))
	w.SetUint32(KeyRankV, uint32(c.RankV))
	w.SetUint32(KeyRankG, uint32(c.RankG))
	w.SetUint32(KeyFFN, uint32(c.FFN))
	w.SetUint32(KeyHeadCount, 0)
}
