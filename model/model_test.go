package model_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

var fixtureNames = []string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"}

// The tiny fixture's hyperparameters, from fixtures/README.md.
var tinyConfig = model.Config{
	Name: "synthetic RWKV7 tiny", Layers: 3, Dim: 256, HeadSize: 64, Heads: 4, FFN: 1024,
	RankW: 32, RankA: 64, RankV: 32, RankG: 96, Vocab: 1024, Eps: 1e-5,
}

func TestFixtureConfigs(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			f, err := gguf.Open(fixtures.Path(t, "tiny", "rwkv7-tiny-"+name+".gguf"))
			require.NoError(t, err)
			defer f.Close()
			w, err := model.Load(f)
			require.NoError(t, err)
			require.Equal(t, tinyConfig, w.Config)
			require.Equal(t, uint64(3259648), model.ParamCount(f), "parameter count from the fixtures README")
			require.Len(t, f.Tensors, 6+28*3)
			require.Equal(t, int64(4*3*256*(64+2)), w.Config.StateBytes())
		})
	}
}

// rewrite copies a GGUF file through the writer, letting edit drop or change
// keys and tensors.
type edit struct {
	dropKey    string
	dropTensor string
	addTensor  bool
	reshape    string // tensor whose ne1 is doubled
	setKey     string
	setValue   gguf.Value
	retype     string // tensor stored as Q8_1 (zeros) instead
}

func rewrite(t *testing.T, src string, e edit) string {
	t.Helper()
	f, err := gguf.Open(src)
	require.NoError(t, err)
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs {
		switch kv.Key {
		case e.dropKey:
			continue
		case e.setKey:
			w.Set(kv.Key, e.setValue)
		default:
			w.Set(kv.Key, kv.Value)
		}
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Name == e.dropTensor {
			continue
		}
		data, err := f.TensorData(ti)
		require.NoError(t, err)
		dims := append([]uint64(nil), ti.Dims...)
		typ := ti.Type
		if ti.Name == e.retype {
			typ = gguf.Q8_1
			data = make([]byte, ti.Elements()/32*36)
		}
		if ti.Name == e.reshape {
			dims[1] *= 2
			data = append(append([]byte(nil), data...), data...)
		}
		require.NoError(t, w.AddTensor(ti.Name, typ, dims, data))
	}
	if e.addTensor {
		require.NoError(t, w.AddTensor("blk.0.surprise.weight", gguf.F32, []uint64{4}, make([]byte, 16)))
	}
	out := filepath.Join(t.TempDir(), "edited.gguf")
	require.NoError(t, w.WriteFile(out))
	return out
}

func goldenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "golden.gguf")
	require.NoError(t, numtest.WriteGolden(p))
	return p
}

func loadErr(t *testing.T, path string) error {
	t.Helper()
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = model.Load(f)
	return err
}

func TestValidateReportsEveryProblem(t *testing.T) {
	golden := goldenFile(t)
	require.NoError(t, loadErr(t, golden))

	err := loadErr(t, rewrite(t, golden, edit{dropTensor: "blk.1.time_mix_key.weight"}))
	require.ErrorContains(t, err, "missing tensor blk.1.time_mix_key.weight, expected shape {128, 128}")

	err = loadErr(t, rewrite(t, golden, edit{addTensor: true}))
	require.ErrorContains(t, err, "unexpected tensor blk.0.surprise.weight {4} (F32)")

	err = loadErr(t, rewrite(t, golden, edit{reshape: "blk.0.channel_mix_key.weight"}))
	require.ErrorContains(t, err, "tensor blk.0.channel_mix_key.weight has shape {128, 1024}, expected {128, 512}")

	// Several problems at once are all listed.
	p := rewrite(t, rewrite(t, golden, edit{dropTensor: "output.weight"}), edit{reshape: "blk.1.time_mix_g1.weight"})
	err = loadErr(t, p)
	var ve *model.ValidationError
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Problems, 2, "%v", err)
}

func TestConfigErrors(t *testing.T) {
	golden := goldenFile(t)
	err := loadErr(t, rewrite(t, golden, edit{dropKey: model.KeyEps}))
	require.ErrorContains(t, err, "rwkv7.attention.layer_norm_epsilon is missing")
	require.ErrorIs(t, err, gguf.ErrKeyNotFound)

	err = loadErr(t, rewrite(t, golden, edit{setKey: model.KeyBlockCount, setValue: gguf.Int32Value(2)}))
	require.ErrorContains(t, err, "rwkv7.block_count")
	require.ErrorContains(t, err, "INT32")

	err = loadErr(t, rewrite(t, golden, edit{setKey: model.KeyArchitecture, setValue: gguf.StringValue("llama")}))
	require.ErrorContains(t, err, `general.architecture is "llama", expected "rwkv7"`)

	err = loadErr(t, rewrite(t, golden, edit{setKey: model.KeyHeadSize, setValue: gguf.Uint32Value(48)}))
	require.ErrorContains(t, err, "not a multiple of head_size 48")

	err = loadErr(t, rewrite(t, golden, edit{setKey: model.KeyShiftCount + "x", dropKey: model.KeyTokens}))
	require.ErrorContains(t, err, "tokenizer.ggml.tokens is missing")
}

func TestValidateUnsupportedType(t *testing.T) {
	// The head stored as Q8_1 (an activation format llama.cpp never writes
	// for weights): structurally valid, but not computable.
	golden := goldenFile(t)
	err := loadErr(t, rewrite(t, golden, edit{retype: "output.weight"}))
	require.ErrorContains(t, err, "tensor output.weight has type Q8_1 (id 9), which is not supported")
}

// TestTokenizerFixtureCases runs every case of tokenizer-cases.jsonl through
// the tokenizer built from the World vocabulary GGUF.
func TestTokenizerFixtureCases(t *testing.T) {
	f, err := gguf.Open(fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf"))
	require.NoError(t, err)
	defer f.Close()
	tok, err := model.LoadTokenizer(f)
	require.NoError(t, err)
	require.Equal(t, 65536, tok.VocabSize())

	cases, err := os.Open(fixtures.Path(t, "vocab", "tokenizer-cases.jsonl"))
	require.NoError(t, err)
	defer cases.Close()
	sc := bufio.NewScanner(cases)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var c struct {
			Name       string `json:"name"`
			TextHex    string `json:"text_hex"`
			IDs        []int  `json:"ids"`
			DecodedHex string `json:"decoded_hex"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		text, err := hex.DecodeString(c.TextHex)
		require.NoError(t, err)
		ids, err := tok.Encode(text)
		require.NoError(t, err, c.Name)
		for i := range max(len(ids), len(c.IDs)) {
			if i >= len(ids) || i >= len(c.IDs) || ids[i] != c.IDs[i] {
				t.Fatalf("case %s: ids differ at position %d: got %v, want %v", c.Name, i, ids[i:min(i+5, len(ids))], c.IDs[i:min(i+5, len(c.IDs))])
			}
		}
		dec, err := tok.Decode(c.IDs)
		require.NoError(t, err, c.Name)
		require.Equal(t, c.DecodedHex, hex.EncodeToString(dec), "case %s decode", c.Name)
		n++
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 51, n)
}

func TestStateRoundTripAndErrors(t *testing.T) {
	c := tinyConfig
	s := model.NewState(c)
	for i := range s.Data {
		s.Data[i] = float32(i%97) - 48.5
	}
	require.Len(t, s.WKV(2), c.Dim*c.HeadSize)
	s.AttShift(1)[0] = 7
	require.Equal(t, float32(7), s.Data[c.LayerStateFloats()])
	p := filepath.Join(t.TempDir(), "s.state")
	require.NoError(t, model.SaveState(p, s))
	got, err := model.LoadState(p, c)
	require.NoError(t, err)
	require.Equal(t, s.Data, got.Data)

	other := c
	other.Layers = 2
	_, err = model.LoadState(p, other)
	require.ErrorIs(t, err, model.ErrBadStateFile)
	require.ErrorContains(t, err, "state is for L=3")

	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b[:len(b)-5], 0o644))
	_, err = model.LoadState(p, c)
	require.ErrorIs(t, err, model.ErrBadStateFile)

	require.Error(t, s.CopyFrom(model.NewState(other)))
}

func TestCheckTokens(t *testing.T) {
	require.NoError(t, model.CheckTokens([]int{0, 5, 9}, 10))
	require.ErrorIs(t, model.CheckTokens([]int{0, 10}, 10), model.ErrBadToken)
	require.ErrorContains(t, model.CheckTokens([]int{3, -1}, 10), "position 1")
	require.Error(t, model.CheckTokens(nil, 10))
	require.Equal(t, 1, model.Argmax([]float32{1, 3, 3, 2}))
}
