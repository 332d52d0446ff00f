package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

// poison copies the tiny F32 fixture to dir with the given float32 elements
// (tensor name → flat index → value) overwritten, and returns its path.
func poison(t *testing.T, dir string, values map[string]map[int]float32) string {
	t.Helper()
	src := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	f, err := gguf.Open(src)
	require.NoError(t, err)
	defer f.Close()
	for name, elems := range values {
		ti, ok := f.Tensor(name)
		require.True(t, ok, name)
		require.Equal(t, gguf.F32, ti.Type, name)
		for i, v := range elems {
			off := f.DataOffset + ti.Offset + 4*uint64(i)
			binary.LittleEndian.PutUint32(raw[off:], math.Float32bits(v))
		}
	}
	out := filepath.Join(dir, "poisoned-F32.gguf")
	require.NoError(t, os.WriteFile(out, raw, 0o644))
	return out
}

var nan = float32(math.NaN())

// TestInfoCheckNamesNonFiniteTensors: a NaN in the head (row 5, column 7)
// and an Inf in a layer's matrix are each named with the count and the
// first index; the clean fixture passes.
func TestInfoCheckNamesNonFiniteTensors(t *testing.T) {
	dir := t.TempDir()
	path := poison(t, dir, map[string]map[int]float32{
		"output.weight":                    {5*256 + 7: nan, 9*256 + 1: nan},
		"blk.1.channel_mix_key.weight":     {100: float32(math.Inf(1))},
		"blk.2.time_mix_receptance.weight": {},
	})
	out, _, err := run(t, "info", "--check", path)
	require.Error(t, err)
	require.Contains(t, err.Error(), "2 tensors hold NaN or Inf")
	require.Contains(t, out, "output.weight (F32): 2 of 262144 values non-finite, first at index 1287 (row 5, column 7): NaN")
	require.Contains(t, out, "blk.1.channel_mix_key.weight (F32): 1 of 262144 values non-finite, first at index 100 (row 0, column 100): +Inf")
	require.NotContains(t, out, "time_mix_receptance")

	out, _, err = run(t, "info", "--check", "--json", path)
	require.Error(t, err)
	var r infoReport
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Len(t, r.NonFinite, 2)
	require.Equal(t, infoNonFinite{Tensor: "blk.1.channel_mix_key.weight", Type: "F32", Count: 1, Elements: 262144, First: 100, Row: 0, Column: 100, Value: "+Inf"}, r.NonFinite[0])

	for _, typ := range []string{"F32", "Q4_K_M", "Q2_K"} {
		out, _, err = run(t, "info", "--check", fixtures.Path(t, "tiny", "rwkv7-tiny-"+typ+".gguf"))
		require.NoError(t, err, typ)
		require.Contains(t, out, "90 tensors scanned, no NaN or Inf", typ)
	}
}

// TestLogitsRefusesNonFinite: NaN logits are an error, and no file is left.
func TestLogitsRefusesNonFinite(t *testing.T) {
	dir := t.TempDir()
	path := poison(t, dir, map[string]map[int]float32{"output.weight": {3 * 256: nan}})
	out := filepath.Join(dir, "out.f32")
	_, _, err := run(t, "logits", "-m", path, "--tokens", "0,795", "-o", out)
	require.Error(t, err)
	require.Contains(t, err.Error(), "the logits at position 0 (token index 3) hold non-finite values: 1 NaN and 0 Inf")
	require.Contains(t, err.Error(), "rwkv info --check")
	_, statErr := os.Stat(out)
	require.True(t, os.IsNotExist(statErr), "no output file on error")
}

// TestVerifyBlamesTheModelNotTheGPU: when the model's weights give NaN on
// both engines, verify says so instead of blaming the GPU.
func TestVerifyBlamesTheModelNotTheGPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	d.Close()
	path := poison(t, t.TempDir(), map[string]map[int]float32{"output.weight": {3 * 256: nan}})
	out, _, err := run(t, "verify", "-m", path, "--tokens", "0,795,156")
	require.Error(t, err)
	require.Contains(t, err.Error(), "both engines produce non-finite values (the model itself, see rwkv info --check")
	require.NotContains(t, err.Error(), "GPU does not match")
	require.Contains(t, out, "seq: both engines produce non-finite values: the GPU: ")
	require.Contains(t, out, "at position 0 (token index 3) hold non-finite values")
}

// TestVerifyRefWithNaN: a reference file holding NaN cannot serve.
func TestVerifyRefWithNaN(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.f32")
	vals := make([]float32, 2*1024)
	vals[1024+9] = nan
	var buf bytes.Buffer
	require.NoError(t, writeFloat32s(&buf, vals))
	require.NoError(t, os.WriteFile(ref, buf.Bytes(), 0o644))
	_, _, err := run(t, "verify", "-m", fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf"), "--tokens", "1,2", "--ref", ref)
	require.Error(t, err)
	require.Contains(t, err.Error(), "--ref "+ref+" hold 1 non-finite values (first at position 1, index 9: NaN)")
}

// TestNumericFlagsAreChecked runs every command with out-of-range numbers:
// each must fail before any work, naming the flag, the value and the range.
func TestNumericFlagsAreChecked(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	vocab := fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf")
	out := filepath.Join(t.TempDir(), "out.f32")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "-p", "-5", "-n", "-1", "-r", "0"}, "-p/--n-prompt -5: expected an integer in [0, 65536]"},
		{[]string{"bench", "-n", "-1"}, "-n/--n-gen -1: expected an integer in [0, 65536]"},
		{[]string{"bench", "-n", "100000"}, "-n/--n-gen 100000: expected an integer in [0, 65536]"},
		{[]string{"bench", "-r", "0"}, "-r/--repetitions 0: expected an integer in [1, 1000]"},
		{[]string{"bench", "-r", "-3"}, "-r/--repetitions -3: expected an integer in [1, 1000]"},
		{[]string{"bench", "-p", "0", "-n", "0"}, "nothing to measure"},
		{[]string{"bench", "-b", "0"}, `-b/--batch: item 1 "0" is not a sequence count (expected an integer in [1, 64])`},
		{[]string{"bench", "-b", "1,x"}, `-b/--batch: item 2 "x" is not a sequence count (expected an integer in [1, 64])`},
		{[]string{"bench", "-b", "65"}, `item 1 "65" is not a sequence count`},
		{[]string{"bench", "-b", ","}, "expected comma-separated sequence counts in [1, 64]"},
		{[]string{"verify", "-m", model, "--tol", "NaN"}, "--tol NaN: expected a finite number in (0, 1)"},
		{[]string{"verify", "-m", model, "--tol", "0"}, "--tol 0: expected a finite number in (0, 1)"},
		{[]string{"verify", "-m", model, "--tol", "-1e-3"}, "--tol -0.001: expected a finite number in (0, 1)"},
		{[]string{"verify", "-m", model, "--tol", "1"}, "--tol 1: expected a finite number in (0, 1)"},
		{[]string{"verify", "-m", model, "--tol", "+Inf"}, "--tol +Inf: expected a finite number in (0, 1)"},
		{[]string{"verify", "-m", model, "-n", "0"}, "-n 0: expected an integer in [1, 4096]"},
		{[]string{"verify", "-m", model, "-n", "5000"}, "-n 5000: expected an integer in [1, 4096]"},
		{[]string{"verify", "-m", model, "--tokens", "1,-2"}, `--tokens: item 2 "-2" is not a token id (expected an integer in [0, 1024))`},
		{[]string{"logits", "-m", model, "--tokens", "-1", "-o", out}, `--tokens: item 1 "-1" is not a token id (expected an integer in [0, 1024))`},
		{[]string{"logits", "-m", model, "--tokens", "0,5000", "-o", out}, `--tokens: item 2 "5000" is not a token id (expected an integer in [0, 1024))`},
		{[]string{"logits", "-m", model, "--tokens", "1,2.5", "-o", out}, `--tokens: item 2 "2.5" is not a token id`},
		{[]string{"logits", "-m", model, "--tokens", "99999999999999999999", "-o", out}, `--tokens: item 1 "99999999999999999999" is not a token id`},
		{[]string{"logits", "-m", model, "--tokens", " , ", "-o", out}, "--tokens: no token ids given (expected comma-separated integers in [0, 1024))"},
		{[]string{"logits", "-m", model, "--tokens", "1", "--gpu", "-5", "-o", out}, "--gpu -5: expected an adapter index from `rwkv devices` (0 or more"},
		{[]string{"devices", "--gpu", "-1"}, "--gpu -1: expected an adapter index"},
		{[]string{"tokenize", "-m", vocab, "--decode", "1,65536"}, `--decode: item 2 "65536" is not a token id (expected an integer in [0, 65536))`},
		{[]string{"tokenize", "-m", vocab, "--decode", "x"}, `--decode: item 1 "x" is not a token id`},
		{[]string{"run", "--device", "cpu", "-m", model, "-p", "hi", "-n", "-1"}, "-n -1: expected an integer in [0, 16777216]"},
	}
	for _, c := range cases {
		_, _, err := run(t, c.args...)
		if err == nil {
			t.Errorf("rwkv %s: no error", strings.Join(c.args, " "))
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("rwkv %s:\n got  %v\n want %s", strings.Join(c.args, " "), err, c.want)
		}
	}
	_, statErr := os.Stat(out)
	require.True(t, os.IsNotExist(statErr), "no output file after a flag error")
}

// TestGPUIndexBeyondAdapters: --gpu N past the adapter list is an error
// listing the adapters, for every command (devices included).
func TestGPUIndexBeyondAdapters(t *testing.T) {
	ads, err := gpu.Adapters()
	require.NoError(t, err)
	for _, args := range [][]string{{"devices", "--gpu", "99"}, {"logits", "--gpu", "99", "--device", "gpu", "-m", "x.gguf", "--tokens", "1", "-o", "x.f32"}} {
		_, _, err := run(t, args...)
		require.Error(t, err, args)
		require.Contains(t, err.Error(), "--gpu 99", args)
		if len(ads) == 0 {
			require.ErrorIs(t, err, gpu.ErrNoAdapter)
			continue
		}
		require.Contains(t, err.Error(), "no such adapter", args)
		for _, a := range ads {
			require.Contains(t, err.Error(), a.String(), args)
		}
	}
	if len(ads) > 0 {
		_, _, err := run(t, "devices", "--gpu", "0")
		require.NoError(t, err)
	}
}

// TestVocabularyOnlyModelSaysSoInOneLine: the World vocabulary GGUF used as
// a model: one line saying that it has no weights, not 342 problems.
func TestVocabularyOnlyModelSaysSoInOneLine(t *testing.T) {
	vocab := fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf")
	_, _, err := run(t, "logits", "-m", vocab, "--tokens", "1", "-o", filepath.Join(t.TempDir(), "x.f32"))
	require.Error(t, err)
	require.Equal(t, "model: "+vocab+": has the vocabulary but no weight tensors (0 of 342 expected): it is not a model file", err.Error())
	out, _, err := run(t, "info", vocab)
	require.Error(t, err)
	require.Contains(t, out, "problems      1\n  has the vocabulary but no weight tensors (0 of 342 expected)\n")
	require.NotContains(t, out, "missing tensor")
}

// TestOutputNeverOverwritesTheModel: `logits -m m.gguf -o m.gguf` (and the
// same file through a hard link or a symlink) is refused, naming both paths,
// and the model is unchanged.
func TestOutputNeverOverwritesTheModel(t *testing.T) {
	dir := t.TempDir()
	src := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	model := filepath.Join(dir, "m.gguf")
	require.NoError(t, os.WriteFile(model, raw, 0o644))
	hard, soft := filepath.Join(dir, "hard.gguf"), filepath.Join(dir, "soft.gguf")
	require.NoError(t, os.Link(model, hard))
	require.NoError(t, os.Symlink(model, soft))
	for _, o := range []string{model, hard, soft} {
		_, _, err := run(t, "logits", "-m", model, "--tokens", "1", "-o", o)
		require.Error(t, err, o)
		require.Contains(t, err.Error(), "output "+o+" is the same file as the input "+model, o)
		// The other way round: the link as the model, the file as output.
		_, _, err = run(t, "logits", "-m", o, "--tokens", "1", "-o", model)
		require.Error(t, err, o)
		require.Contains(t, err.Error(), "is the same file as the input "+o, o)
	}
	got, err := os.ReadFile(model)
	require.NoError(t, err)
	require.True(t, bytes.Equal(raw, got), "the model was changed")
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, es, 3, "no temporary file left")
}

// TestOutputsToDevicesAndBadPaths: /dev/null stays a device for logits and
// synth, /dev/full reports the cause, and a missing folder or a folder as
// the target is named with the user's path.
func TestOutputsToDevicesAndBadPaths(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	_, _, err := run(t, "logits", "-m", model, "--tokens", "1,2", "-o", os.DevNull)
	require.NoError(t, err)
	_, _, err = run(t, "synth", "--preset", "tiny", "--type", "q4_0", "-o", os.DevNull)
	require.NoError(t, err)
	st, err := os.Stat(os.DevNull)
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&os.ModeCharDevice, "/dev/null is still a character device")

	for _, args := range [][]string{
		{"logits", "-m", model, "--tokens", "1,2", "-o", "/dev/full"},
		{"synth", "--preset", "tiny", "--type", "q8_0", "-o", "/dev/full"},
	} {
		_, _, err = run(t, args...)
		require.Error(t, err, args)
		require.Contains(t, err.Error(), "writing /dev/full", args)
		require.Contains(t, err.Error(), "no space left on device", args)
	}
	st, err = os.Stat("/dev/full")
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&os.ModeCharDevice, "/dev/full is still a character device")

	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "out.f32")
	for _, args := range [][]string{
		{"logits", "-m", model, "--tokens", "1", "-o", missing},
		{"synth", "--preset", "tiny", "--type", "q8_0", "-o", missing},
	} {
		_, _, err = run(t, args...)
		require.Error(t, err, args)
		require.Contains(t, err.Error(), "output "+missing+": the folder "+filepath.Dir(missing)+" does not exist", args)
		require.NotContains(t, err.Error(), ".tmp-", args)
	}
	for _, args := range [][]string{
		{"logits", "-m", model, "--tokens", "1", "-o", dir},
		{"synth", "--preset", "tiny", "--type", "q8_0", "-o", dir},
	} {
		_, _, err = run(t, args...)
		require.Error(t, err, args)
		require.Contains(t, err.Error(), "output "+dir+" is a folder", args)
	}
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, es, "nothing written")
}
