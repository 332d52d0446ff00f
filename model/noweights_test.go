package model_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// TestVocabularyOnlyFileHasNoWeights: the World vocabulary GGUF (rwkv7
// hyperparameters of the 0.1B model, 6 + 28·12 = 342 tensors expected, none
// present) gives one NoWeightsError, not 342 "missing tensor" problems.
func TestVocabularyOnlyFileHasNoWeights(t *testing.T) {
	path := fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf")
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = model.Load(f)
	var nw *model.NoWeightsError
	require.True(t, errors.As(err, &nw), "got %v", err)
	require.Equal(t, model.NoWeightsError{File: path, Expected: 342, HasVocab: true}, *nw)
	require.Equal(t, "model: "+path+": has the vocabulary but no weight tensors (0 of 342 expected): it is not a model file", err.Error())
	require.NotContains(t, err.Error(), "\n")
}

// buildFile writes a GGUF with c's metadata and the given F32 tensors
// (zeros), and parses it from memory.
func buildFile(t *testing.T, c model.Config, specs []model.TensorSpec) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	w.SetString(model.KeyArchitecture, model.Architecture)
	model.SetConfigKeys(w, c)
	for _, s := range specs {
		n := uint64(1)
		for _, d := range s.Dims {
			n *= d
		}
		require.NoError(t, w.AddTensor(s.Name, gguf.F32, s.Dims, make([]byte, 4*n)))
	}
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := gguf.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "built.gguf")
	require.NoError(t, err)
	return f
}

// TestFewTensorsStillListsProblems: a file missing two tensors lists those
// two; one holding a single tensor, or only foreign ones, says so in one
// line.
func TestFewTensorsStillListsProblems(t *testing.T) {
	c := tinyConfig
	all := c.TensorSpecs()
	require.Len(t, all, 90)
	var most []model.TensorSpec
	for _, s := range all {
		if s.Name != "blk.1.time_mix_key.weight" && s.Name != model.TensorHead {
			most = append(most, s)
		}
	}
	err := model.Validate(buildFile(t, c, most), c)
	var ve *model.ValidationError
	require.True(t, errors.As(err, &ve), "got %v", err)
	require.Equal(t, []string{
		"missing tensor blk.1.time_mix_key.weight, expected shape {256, 256}",
		"missing tensor output.weight, expected shape {256, 1024}",
	}, ve.Problems)

	err = model.Validate(buildFile(t, c, all[1:2]), c)
	require.True(t, errors.As(err, &ve), "got %v", err)
	require.Equal(t, []string{"the file holds 1 tensors, far fewer than the 90 that rwkv7.block_count = 3 needs"}, ve.Problems)

	foreign := []model.TensorSpec{{Name: "llama.weight", Dims: []uint64{4}}, {Name: "other.weight", Dims: []uint64{4}}}
	f := buildFile(t, model.Config{Layers: 1, Dim: 4, HeadSize: 4, Heads: 1, FFN: 4, RankW: 1, RankA: 1, RankV: 1, RankG: 1, Vocab: 4, Eps: 1e-5}, foreign)
	c1, err := model.ConfigFromGGUF(f)
	require.Error(t, err, "no tokenizer.ggml.tokens: config incomplete")
	c1 = model.Config{Layers: 1, Dim: 4, HeadSize: 4, Heads: 1, FFN: 4, RankW: 1, RankA: 1, RankV: 1, RankG: 1, Vocab: 4}
	require.EqualError(t, model.Validate(f, c1), "model: built.gguf: has no weight tensors (0 of 34 expected, 2 other tensors): it is not a model file")
}

// TestHugeBlockCountIsCheap: a header of a few hundred bytes claiming 2^20
// layers (the largest ConfigFromGGUF accepts) used to make Validate list
// 29 million tensor names (two minutes and 13 GiB of allocation for
// `rwkv info`); it must answer at once, in one line.
func TestHugeBlockCountIsCheap(t *testing.T) {
	huge := model.Config{Layers: 1 << 20, Dim: 64, HeadSize: 64, Heads: 1, FFN: 64, RankW: 1, RankA: 1, RankV: 1, RankG: 1, Vocab: 4, Eps: 1e-5}
	for _, tensors := range [][]model.TensorSpec{nil, tinyConfig.TensorSpecs()[:3]} {
		f := buildFile(t, huge, tensors)
		start := time.Now()
		err := model.Validate(f, huge)
		require.Error(t, err)
		var ve *model.ValidationError
		if errors.As(err, &ve) {
			require.Len(t, ve.Problems, 1, "one problem, not a list")
		} else {
			var nw *model.NoWeightsError
			require.True(t, errors.As(err, &nw), "got %v", err)
		}
		require.Less(t, time.Since(start), 2*time.Second, "Validate of a %d-tensor file took %v", len(tensors), time.Since(start))
	}
}
