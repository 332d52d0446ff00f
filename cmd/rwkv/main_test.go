package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
)

// run executes the CLI in-process and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestInfoJSONOnEveryFixture(t *testing.T) {
	for _, name := range []string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"} {
		path := fixtures.Path(t, "tiny", "rwkv7-tiny-"+name+".gguf")
		out, _, err := run(t, "info", "--json", path)
		require.NoError(t, err, name)
		var r infoReport
		require.NoError(t, json.Unmarshal([]byte(out), &r), name)
		require.Equal(t, "rwkv7", r.Architecture)
		c := r.Config
		require.NotNil(t, c)
		require.Equal(t, []int{3, 256, 64, 4, 1024, 32, 64, 32, 96, 1024},
			[]int{c.Layers, c.Dim, c.HeadSize, c.Heads, c.FFN, c.RankW, c.RankA, c.RankV, c.RankG, c.Vocab}, name)
		require.Equal(t, uint64(3259648), r.Params)
		require.Empty(t, r.Problems)
	}
	out, _, err := run(t, "info", "--tensors", fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_K_M.gguf"))
	require.NoError(t, err)
	require.Contains(t, out, "blk.2.channel_mix_value.weight")
	require.Contains(t, out, "Q6_K")
}

func TestTokenizeCommand(t *testing.T) {
	vocab := fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf")
	out, _, err := run(t, "tokenize", "-m", vocab, "--json", "User: hi\n\nAssistant:")
	require.NoError(t, err)
	require.JSONEq(t, "[24281,59,4571,261,5585,41693,59]", out)
	out, _, err = run(t, "tokenize", "-m", vocab, "--decode", "24281,59,4571")
	require.NoError(t, err)
	require.Equal(t, "User: hi", out)
	f := filepath.Join(t.TempDir(), "bytes")
	require.NoError(t, os.WriteFile(f, []byte{0xe2, 0x82, 0xac}, 0o644))
	out, _, err = run(t, "tokenize", "-m", vocab, "--file", f)
	require.NoError(t, err)
	require.Equal(t, "9863\n", out)
	_, _, err = run(t, "tokenize", "-m", vocab, "--decode", "1,x")
	require.ErrorContains(t, err, `"x"`)
}

func TestLogitsContract(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	ideal, err := numtest.ReadF32(fixtures.Path(t, "tiny", "logits", "rwkv7-tiny-F32.ideal.f32"))
	require.NoError(t, err)
	dir := t.TempDir()
	for _, mode := range []string{"seq", "batch"} {
		out := filepath.Join(dir, mode+".f32")
		_, _, err := run(t, "logits", "-m", model, "--tokens", "0,795,156,583", "--mode", mode, "-o", out)
		require.NoError(t, err)
		got, err := numtest.ReadF32(out)
		require.NoError(t, err)
		require.Len(t, got, 4*1024, "float32 [T][V], no header")
		s := numtest.Compare(got, ideal[:4*1024])
		require.Less(t, s.RelL2, 1e-5, mode)
	}
}

func TestLogitsBadInputLeavesNoFile(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	out := filepath.Join(t.TempDir(), "out.f32")
	_, _, err := run(t, "logits", "-m", model, "--tokens", "0,5000", "-o", out)
	require.ErrorContains(t, err, `--tokens: item 2 "5000" is not a token id (expected an integer in [0, 1024))`)
	_, statErr := os.Stat(out)
	require.True(t, os.IsNotExist(statErr), "no output file on error")

	_, _, err = run(t, "logits", "-m", model, "--tokens", "1", "--mode", "fast", "-o", out)
	require.ErrorContains(t, err, `--mode "fast"`)
	_, _, err = run(t, "logits", "-m", filepath.Join(t.TempDir(), "missing.gguf"), "--tokens", "1", "-o", out)
	require.Error(t, err)

	bad := filepath.Join(t.TempDir(), "bad.gguf")
	require.NoError(t, os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00garbage"), 0o644))
	_, _, err = run(t, "info", bad)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "bad.gguf"), err.Error())
}

func TestRunOnCPU(t *testing.T) {
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-F16.gguf")
	out, _, err := run(t, "run", "--device", "cpu", "-m", model, "-p", "Hello", "-n", "8")
	require.NoError(t, err)
	require.NotEmpty(t, strings.TrimSpace(out))
}

func TestLogitsAndRunOnGPU(t *testing.T) {
	d := gputest.OpenDevice(t) // skips without an adapter, fails under CI
	d.Close()
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-Q8_0.gguf")
	out := filepath.Join(t.TempDir(), "gpu.f32")
	_, _, err := run(t, "logits", "--device", "gpu", "--mode", "batch", "-m", model, "--tokens", "0,795,156,583,637", "-o", out)
	require.NoError(t, err)
	got, err := numtest.ReadF32(out)
	require.NoError(t, err)
	ideal, err := numtest.ReadF32(fixtures.Path(t, "tiny", "logits", "rwkv7-tiny-Q8_0.ideal.f32"))
	require.NoError(t, err)
	require.Less(t, numtest.Compare(got, ideal[:5*1024]).RelL2, 1e-4)

	gpuText, _, err := run(t, "run", "--device", "gpu", "-m", model, "-p", "Hello", "-n", "8")
	require.NoError(t, err)
	cpuText, _, err := run(t, "run", "--device", "cpu", "-m", model, "-p", "Hello", "-n", "8")
	require.NoError(t, err)
	require.Equal(t, cpuText, gpuText, "greedy text on the GPU equals the CPU reference")
}

func TestVerifyCommand(t *testing.T) {
	d := gputest.OpenDevice(t)
	d.Close()
	ids := "0,795,156,583,637,1023,418,2"
	out, _, err := run(t, "verify", "-m", fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_0.gguf"), "--tokens", ids)
	require.NoError(t, err, out)
	require.Contains(t, out, "batch")
	// The tiny model barely amplifies rounding (float32 sums land ~1e-6
	// from float64 ones), so the tolerance stays at --tol.
	require.Contains(t, out, "noise floor: the CPU reference with float32 sums differs from its float64 sums by rel L2 ")
	require.Contains(t, out, "tolerance: max(--tol 0.0001, --noise-factor 1 × ")
	require.Contains(t, out, ") = 0.0001\n")
	out, _, err = run(t, "verify", "-m", fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_0.gguf"), "--tokens", ids, "--noise-factor", "0", "--tol", "2e-4")
	require.NoError(t, err, out)
	require.Contains(t, out, "tolerance: --tol 0.0002 (no noise floor measured)")
	_, _, err = run(t, "verify", "-m", fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_0.gguf"), "--noise-factor", "-1")
	require.ErrorContains(t, err, "--noise-factor -1")
	// The ideal logits of another file are far away: verify must fail and
	// say where.
	ref := filepath.Join(t.TempDir(), "ref.f32")
	ideal, err := numtest.ReadF32(fixtures.Path(t, "tiny", "logits", "rwkv7-tiny-F32.ideal.f32"))
	require.NoError(t, err)
	f, err := os.Create(ref)
	require.NoError(t, err)
	require.NoError(t, writeFloat32s(f, ideal[:8*1024]))
	require.NoError(t, f.Close())
	out, _, err = run(t, "verify", "-m", fixtures.Path(t, "tiny", "rwkv7-tiny-Q2_K.gguf"), "--tokens", ids, "--ref", ref)
	require.ErrorContains(t, err, "does not match")
	require.Contains(t, out, "first mismatch position")
}

// TestVerifyStreams runs verify --streams on a fixture: every stream is
// listed, the last line gives the worst error, and a tolerance below it
// makes the command fail naming the stream.
func TestVerifyStreams(t *testing.T) {
	d := gputest.OpenDevice(t)
	d.Close()
	model := fixtures.Path(t, "tiny", "rwkv7-tiny-Q8_0.gguf")
	out, _, err := run(t, "verify", "-m", model, "--streams", "5", "-n", "30")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Contains(t, out, "sequence 4")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "worst relative L2 over 5 streams: "), last)
	worst, err := strconv.ParseFloat(strings.TrimPrefix(last, "worst relative L2 over 5 streams: "), 64)
	require.NoError(t, err)
	require.Greater(t, worst, 0.0, "the GPU rounds differently from the CPU reference")
	require.Less(t, worst, 1e-4)
	out, _, err = run(t, "verify", "-m", model, "--streams", "5", "-n", "30", "--tol", fmt.Sprint(worst/2))
	require.ErrorContains(t, err, "streams do not match the CPU reference")
	require.Contains(t, out, "FAIL")
	_, _, err = run(t, "verify", "-m", model, "--streams", "-3")
	require.ErrorContains(t, err, "--streams -3: expected a number of sequences from 1 to 256")
}
