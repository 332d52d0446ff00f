package numtest

import (
	"encoding/binary"
	"math"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// GoldenConfig is the formula-defined test model of spec/rwkv7.md §11.
var GoldenConfig = model.Config{
	Layers: 2, Dim: 128, HeadSize: 64, Heads: 2, FFN: 512,
	RankW: 32, RankA: 32, RankV: 32, RankG: 32, Vocab: 257, Eps: 1e-5,
}

// GoldenPrompt is the input of §11: the bytes "<s>Hello, RWKV-7!\n\n".
var GoldenPrompt = []int{0, 73, 102, 109, 109, 112, 45, 33, 83, 88, 76, 87, 46, 56, 34, 11, 11}

// GoldenU returns the §11 pseudo-random value u ∈ [−0.5, 0.5) of element i
// of the tensor called name.
func GoldenU(name string, i uint32) float32 {
	seed := uint32(0x811C9DC5)
	for _, b := range []byte(name) {
		seed ^= uint32(b)
		seed *= 0x01000193
	}
	x := i*2654435761 + seed
	x ^= x >> 15
	x *= 2246822519
	x ^= x >> 13
	return float32(x>>16)/65536 - 0.5
}

// goldenValue maps u to a tensor's value by the §11 table.
func goldenValue(name string, u float32) float32 {
	base := name
	if i := strings.Index(name, "."); strings.HasPrefix(name, "blk.") {
		rest := name[i+1:]
		base = rest[strings.Index(rest, ".")+1:]
	}
	switch {
	case base == model.TensorEmbed:
		return 2 * u
	case strings.HasSuffix(base, "norm.weight"), strings.HasSuffix(base, "norm_2.weight"), base == "time_mix_ln.weight":
		return 1 + 0.25*u
	case strings.HasSuffix(base, ".bias"):
		return 0.25 * u
	case base == "time_mix_lerp_fused.weight", base == "channel_mix_lerp_k.weight":
		return 0.5 + u
	case base == "time_mix_w0.weight":
		return -1 + 2*u
	case base == "time_mix_a0.weight", base == "time_mix_v0.weight":
		return 2 * u
	case base == "time_mix_k_k.weight", base == "time_mix_k_a.weight":
		return 1 + 0.5*u
	case base == "time_mix_r_k.weight":
		return 0.5 * u
	case base == "channel_mix_value.weight":
		return 0.125 * u
	default: // every other 2-D matrix
		return 0.25 * u
	}
}

// GoldenVocab returns the §11 vocabulary: "<s>" then the 256 single bytes,
// escaped as the converter stores them, and their token types.
func GoldenVocab() ([]string, []int32) {
	tokens := []string{"<s>"}
	types := []int32{3}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, tokenizer.Escape([]byte{byte(b)}))
		types = append(types, 1)
	}
	return tokens, types
}

// WriteGolden writes the §11 golden model (all tensors F32) to path.
func WriteGolden(path string) error {
	c := GoldenConfig
	w := gguf.NewWriter()
	w.SetString(model.KeyArchitecture, model.Architecture)
	w.SetString(model.KeyName, "golden rwkv7 test model")
	w.SetUint32("general.file_type", 0)
	model.SetConfigKeys(w, c)
	w.SetString(model.KeyTokenizer, "rwkv")
	tokens, types := GoldenVocab()
	w.SetStrings(model.KeyTokens, tokens)
	w.SetInt32s(model.KeyTokenTypes, types)
	w.SetUint32("tokenizer.ggml.bos_token_id", 0)
	w.SetUint32("tokenizer.ggml.eos_token_id", 0)
	for _, s := range c.TensorSpecs() {
		n := uint64(1)
		for _, d := range s.Dims {
			n *= d
		}
		data := make([]byte, 4*n)
		for i := uint64(0); i < n; i++ {
			v := goldenValue(s.Name, GoldenU(s.Name, uint32(i)))
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		if err := w.AddTensor(s.Name, gguf.F32, s.Dims, data); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}
