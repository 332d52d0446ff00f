package model_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

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

// TestFewTensorsStillListsProblems: a header with no vocabulary and one
// expected tensor is a ValidationError naming the missing tensors; one with
// only foreign tensors is a NoWeightsError counting them.
func TestFewTensorsStillListsProblems(t *testing.T) {
	build := func(tensors ...string) *gguf.File {
		w := gguf.NewWriter()
		w.SetString(model.KeyArchitecture, model.Architecture)
		model.SetConfigKeys(w, tinyConfig)
		for _, name := range tensors {
			require.NoError(t, w.AddTensor(name, gguf.F32, []uint64{256}, make([]byte, 1024)))
		}
		var buf bytes.Buffer
		_, err := w.WriteTo(&buf)
		require.NoError(t, err)
		f, err := gguf.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "built.gguf")
		require.NoError(t, err)
		return f
	}
	c := tinyConfig
	err := model.Validate(build(model.TensorLn0W), c)
	var ve *model.ValidationError
	require.True(t, errors.As(err, &ve), "got %v", err)
	require.Len(t, ve.Problems, 6+28*3-1)
	require.True(t, strings.HasPrefix(ve.Problems[0], "missing tensor token_embd.weight"), ve.Problems[0])

	err = model.Validate(build("llama.weight", "other.weight"), c)
	require.EqualError(t, err, "model: built.gguf: has no weight tensors (0 of 90 expected, 2 other tensors): it is not a model file")
}
