package model_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// modelKeys are the metadata keys the model package reads.
var modelKeys = []string{model.KeyArchitecture, model.KeyName, model.KeyBlockCount, model.KeyEmbedding, model.KeyFFN,
	model.KeyHeadSize, model.KeyEps, model.KeyRankW, model.KeyRankA, model.KeyRankV, model.KeyRankG, model.KeyShiftCount,
	model.KeyTokens, model.KeyTokenTypes, model.KeyTokenizer}

// opReader hands out the bytes of a fuzz input, zeros once it runs dry.
type opReader struct{ b []byte }

func (r *opReader) next(n int) []byte {
	out := make([]byte, n)
	m := copy(out, r.b)
	r.b = r.b[m:]
	return out
}
func (r *opReader) u8() int     { return int(r.next(1)[0]) }
func (r *opReader) u32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }
func (r *opReader) str() string { return string(r.next(r.u8() % 12)) }

// setFuzzValue sets key to a value of a kind drawn from r: small and large
// integers of the right and wrong types, floats (NaN, Inf included),
// strings, and arrays of escaped token strings or token types.
func setFuzzValue(w *gguf.Writer, key string, r *opReader) {
	switch r.u8() % 10 {
	case 0:
		w.SetUint32(key, r.u32()%300)
	case 1:
		w.SetUint32(key, r.u32())
	case 2:
		w.SetFloat32(key, math.Float32frombits(r.u32()))
	case 3:
		if r.u8()%2 == 0 {
			w.SetString(key, "rwkv7")
		} else {
			w.SetString(key, r.str())
		}
	case 4:
		toks := make([]string, r.u8()%8)
		for i := range toks {
			toks[i] = r.str()
		}
		w.SetStrings(key, toks)
	case 5:
		types := make([]int32, r.u8()%8)
		for i := range types {
			types[i] = int32(r.u32()) % 8
		}
		w.SetInt32s(key, types)
	case 6:
		w.SetUint32s(key, []uint32{r.u32() % 300, r.u32()})
	case 7:
		w.SetInt32(key, int32(r.u32()))
	case 8:
		w.SetBool(key, r.u8()%2 == 1)
	default:
		w.SetUint64(key, uint64(r.u32()))
	}
}

// FuzzModelMetadata starts from the metadata of a small valid model, lets
// the input override keys with values of any kind and add a few tensors,
// and runs everything the model package does with a file's metadata:
// ConfigFromGGUF, LoadTokenizer (escaped token strings), Validate, Load and
// the memory estimate. None may panic, and what they accept must be
// consistent.
func FuzzModelMetadata(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 5, 0, 0, 0})                      // block_count = 5
	f.Add([]byte{12, 4, 3, 'a', '\\', 'x', 2, 'b', 'c'}) // tokens
	f.Add([]byte{6, 2, 0, 0, 0xc0, 0x7f})                // eps = NaN
	f.Add([]byte{3, 1, 0xff, 0xff, 0xff, 0xff})          // embedding = 2^32-1
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &opReader{b: data}
		w := gguf.NewWriter()
		w.SetString(model.KeyArchitecture, model.Architecture)
		base := model.Config{Layers: 1, Dim: 4, HeadSize: 4, Heads: 1, FFN: 4, RankW: 1, RankA: 1, RankV: 1, RankG: 1, Vocab: 2, Eps: 1e-5}
		model.SetConfigKeys(w, base)
		w.SetString(model.KeyTokenizer, "rwkv")
		w.SetStrings(model.KeyTokens, []string{"a", "b"})
		w.SetInt32s(model.KeyTokenTypes, []int32{3, 1})
		for ops := 0; len(r.b) > 0 && ops < 12; ops++ {
			k := r.u8()
			if k%16 == 15 { // a tensor named like one of the model's
				specs := base.TensorSpecs()
				s := specs[r.u8()%len(specs)]
				n := uint64(1)
				for _, d := range s.Dims {
					n *= d
				}
				_ = w.AddTensor(s.Name, gguf.F32, s.Dims, make([]byte, 4*n)) // a repeat is refused: fine
				continue
			}
			setFuzzValue(w, modelKeys[k%len(modelKeys)], r)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatalf("writing: %v", err)
		}
		gf, err := gguf.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz.gguf")
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		if tok, err := model.LoadTokenizer(gf); err == nil {
			toks, terr := gf.Strings(model.KeyTokens)
			if terr != nil || tok.VocabSize() != len(toks) {
				t.Fatalf("tokenizer of %d tokens from %v (%v)", tok.VocabSize(), toks, terr)
			}
		}
		c, err := model.ConfigFromGGUF(gf)
		if err != nil {
			return
		}
		for _, v := range []int{c.Layers, c.Dim, c.FFN, c.HeadSize, c.RankW, c.RankA, c.RankV, c.RankG} {
			if v < 1 || v > 1<<20 {
				t.Fatalf("accepted config %s has a size outside [1, 2^20]", c)
			}
		}
		if c.Heads*c.HeadSize != c.Dim || c.Vocab < 1 || !(c.Eps >= 0 && c.Eps < 1) {
			t.Fatalf("accepted an inconsistent config %s", c)
		}
		_ = model.Validate(gf, c)
		if _, err := model.Load(gf); err == nil && len(gf.Tensors) < len(c.TensorSpecs()) {
			t.Fatalf("Load accepted %d tensors for a config needing %d", len(gf.Tensors), len(c.TensorSpecs()))
		}
		_ = model.EstimateCPUMemory(gf, c, 1).Total()
	})
}
