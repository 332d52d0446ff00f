package synth

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// typeRow is the expected storage type of each tensor group and the
// general.file_type for one main type (fixtures/README.md's table, with the
// a/v/g LoRA matrices as in files quantized from an F16 conversion).
type typeRow struct {
	main, head, lora gguf.Type
	fileType         uint32
	fixture          string // name of the fixture file of this type
}

var typeTable = []typeRow{
	{gguf.F32, gguf.F32, gguf.F32, 0, "F32"},
	{gguf.F16, gguf.F16, gguf.F16, 1, "F16"},
	{gguf.BF16, gguf.BF16, gguf.BF16, 32, "BF16"},
	{gguf.Q8_0, gguf.Q8_0, gguf.F16, 7, "Q8_0"},
	{gguf.Q4_0, gguf.Q6_K, gguf.F16, 2, "Q4_0"},
	{gguf.Q4_1, gguf.Q6_K, gguf.F16, 3, "Q4_1"},
	{gguf.Q5_0, gguf.Q6_K, gguf.F16, 8, "Q5_0"},
	{gguf.Q5_1, gguf.Q6_K, gguf.F16, 9, "Q5_1"},
	{gguf.Q2_K, gguf.Q6_K, gguf.F16, 10, "Q2_K"},
	{gguf.Q3_K, gguf.Q6_K, gguf.F16, 12, "Q3_K_M"},
	{gguf.Q4_K, gguf.Q6_K, gguf.F16, 15, "Q4_K_M"},
	{gguf.Q5_K, gguf.Q6_K, gguf.F16, 17, "Q5_K_M"},
	{gguf.Q6_K, gguf.Q6_K, gguf.F16, 18, "Q6_K"},
}

// Tensor groups by name without the "blk.N." prefix.
var (
	mainGroup = []string{"token_embd.weight", "time_mix_key.weight", "time_mix_value.weight",
		"time_mix_receptance.weight", "time_mix_output.weight", "channel_mix_key.weight", "channel_mix_value.weight"}
	loraGroup = []string{"time_mix_a1.weight", "time_mix_a2.weight", "time_mix_v1.weight",
		"time_mix_v2.weight", "time_mix_g1.weight", "time_mix_g2.weight"}
)

// group returns "main", "head", "lora" or "f32" for a tensor name.
func group(name string) string {
	_, suffix := splitName(name)
	switch {
	case suffix == "output.weight":
		return "head"
	case slices.Contains(mainGroup, suffix):
		return "main"
	case slices.Contains(loraGroup, suffix):
		return "lora"
	}
	return "f32"
}

func (r typeRow) want(name string) gguf.Type {
	switch group(name) {
	case "main":
		return r.main
	case "head":
		return r.head
	case "lora":
		return r.lora
	}
	return gguf.F32
}

func tinyPreset(t *testing.T) Preset {
	t.Helper()
	p, err := PresetByName("tiny")
	require.NoError(t, err)
	return p
}

// writeTiny writes the tiny preset in type typ to a temporary file.
func writeTiny(t *testing.T, typ gguf.Type, seed uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny-"+typ.String()+".gguf")
	require.NoError(t, Write(path, Options{Preset: tinyPreset(t), Type: typ, Seed: seed}))
	return path
}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func tensorBytes(t *testing.T, f *gguf.File, name string) []byte {
	t.Helper()
	ti, ok := f.Tensor(name)
	require.True(t, ok, name)
	b, err := f.TensorData(ti)
	require.NoError(t, err)
	return b
}

func TestEveryTypeTiny(t *testing.T) {
	require.Len(t, typeTable, len(gguf.SupportedTypes))
	p := tinyPreset(t)
	specs := p.Config.TensorSpecs()
	for _, row := range typeTable {
		t.Run(row.main.String(), func(t *testing.T) {
			f := openGGUF(t, writeTiny(t, row.main, 1))
			w, err := model.Load(f)
			require.NoError(t, err)
			require.Equal(t, p.Config, w.Config)

			ft, err := f.Uint32("general.file_type")
			require.NoError(t, err)
			require.Equal(t, row.fileType, ft)
			qv, err := f.Uint32("general.quantization_version")
			require.NoError(t, err)
			require.Equal(t, uint32(2), qv)

			// Every tensor, in converter order, with its group's type.
			require.Len(t, f.Tensors, 6+28*p.Config.Layers)
			for i, ti := range f.Tensors {
				require.Equal(t, specs[i].Name, ti.Name)
				require.Equal(t, row.want(ti.Name), ti.Type, ti.Name)
			}
			lerp, ok := f.Tensor("blk.1.time_mix_lerp_fused.weight")
			require.True(t, ok)
			require.Equal(t, []uint64{256, 1, 1, 6}, lerp.Dims)

			// Layer 0's value-residual LoRA is a copy of the iclr LoRA.
			for _, s := range []string{"0", "1", "2"} {
				a := tensorBytes(t, f, "blk.0.time_mix_a"+s+".weight")
				v := tensorBytes(t, f, "blk.0.time_mix_v"+s+".weight")
				require.Equal(t, a, v, s)
			}
			v1, _ := f.Tensor("blk.0.time_mix_v1.weight")
			require.Equal(t, []uint64{256, 64}, v1.Dims)
			v1, _ = f.Tensor("blk.1.time_mix_v1.weight")
			require.Equal(t, []uint64{256, 32}, v1.Dims)

			tok, err := model.LoadTokenizer(f)
			require.NoError(t, err)
			tokens, err := f.Strings(model.KeyTokens)
			require.NoError(t, err)
			checkRoundTrip(t, tok, tokens)
		})
	}
}

// TestTypesMatchFixtures compares the tensor shapes and types and
// general.file_type of each type with the fixture of that type (made by
// llama-quantize from the F32 one). The fixtures were
// quantized from an F32 file, so their a/v/g LoRA matrices are F32 where ours
// (as from an F16 conversion) are F16, or BF16 in a BF16 file.
func TestTypesMatchFixtures(t *testing.T) {
	fixtures.Root(t)
	for _, row := range typeTable {
		t.Run(row.fixture, func(t *testing.T) {
			ref := openGGUF(t, fixtures.Path(t, "tiny", "rwkv7-tiny-"+row.fixture+".gguf"))
			f := openGGUF(t, writeTiny(t, row.main, 1))
			require.Len(t, f.Tensors, len(ref.Tensors))
			for _, ti := range f.Tensors {
				rt, ok := ref.Tensor(ti.Name) // llama-quantize reorders the tensors
				require.True(t, ok, ti.Name)
				require.Equal(t, rt.Dims, ti.Dims, ti.Name)
				if group(ti.Name) == "lora" && row.main != gguf.F32 && row.main != gguf.F16 {
					require.Equal(t, gguf.F32, rt.Type, ti.Name)
					continue
				}
				require.Equal(t, rt.Type, ti.Type, ti.Name)
			}
			want, err := ref.Uint32("general.file_type")
			require.NoError(t, err)
			got, err := f.Uint32("general.file_type")
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

// TestMetadataMatchesFixture checks that every key of the fixture's F32 file
// (written by the generator the fixtures came from, with llama.cpp's
// converter keys) is present with the same type and, for the same seed, the
// same value.
func TestMetadataMatchesFixture(t *testing.T) {
	ref := openGGUF(t, fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf"))
	f := openGGUF(t, writeTiny(t, gguf.F32, 1))
	for _, kv := range ref.KVs {
		got, ok := f.Get(kv.Key)
		require.True(t, ok, kv.Key)
		require.Equal(t, kv.Value.Type(), got.Type(), kv.Key)
		require.Equal(t, kv.Value.Any(), got.Any(), kv.Key)
	}
	require.Len(t, f.KVs, len(ref.KVs)+1) // + synthgguf.version
	v, err := f.Uint32(KeyVersion)
	require.NoError(t, err)
	require.Equal(t, uint32(Version), v)
}

func TestDeterminism(t *testing.T) {
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return b
	}
	for _, typ := range []gguf.Type{gguf.F32, gguf.Q4_K} {
		a := read(writeTiny(t, typ, 7))
		b := read(writeTiny(t, typ, 7))
		require.True(t, bytes.Equal(a, b), "%s: same seed, different bytes", typ)
		c := read(writeTiny(t, typ, 8))
		require.Equal(t, len(a), len(c))
		require.False(t, bytes.Equal(a, c), "%s: different seeds, same bytes", typ)

		// The values do not depend on how many goroutines generate them.
		prev := runtime.GOMAXPROCS(1)
		d := read(writeTiny(t, typ, 7))
		runtime.GOMAXPROCS(prev)
		require.True(t, bytes.Equal(a, d), "%s: one goroutine gave different bytes", typ)
	}
}

func TestProgress(t *testing.T) {
	var calls int
	var last, total int64
	opt := Options{Preset: tinyPreset(t), Type: gguf.Q8_0, Seed: 1, Progress: func(done, tot int64) {
		require.Greater(t, done, last)
		require.LessOrEqual(t, done, tot)
		last, total = done, tot
		calls++
	}}
	path := filepath.Join(t.TempDir(), "p.gguf")
	require.NoError(t, Write(path, opt))
	require.Equal(t, total, last)
	f := openGGUF(t, path)
	var sum int64
	for _, ti := range f.Tensors {
		sum += int64(ti.Size)
	}
	require.Equal(t, sum, total)
	require.GreaterOrEqual(t, calls, len(f.Tensors))
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	p := tinyPreset(t)

	err := Write(filepath.Join(dir, "a.gguf"), Options{Preset: p, Type: gguf.Q8_K})
	require.ErrorContains(t, err, "Q8_K is not a supported weight type")
	require.ErrorContains(t, err, "F32, F16, BF16, Q8_0")

	bad := p
	bad.Config.Dim = 200 // not a multiple of the head size
	require.ErrorContains(t, Write(filepath.Join(dir, "b.gguf"), Options{Preset: bad, Type: gguf.F32}), "do not agree")

	odd := p
	odd.Config.Dim, odd.Config.Heads = 320, 5 // not a multiple of 256
	require.ErrorContains(t, Write(filepath.Join(dir, "c.gguf"), Options{Preset: odd, Type: gguf.Q4_K}), "not a multiple of the Q4_K block size")
	require.NoError(t, Write(filepath.Join(dir, "c.gguf"), Options{Preset: odd, Type: gguf.Q8_0}))

	big := p
	big.Config.Vocab = WorldVocabSize + 1
	require.ErrorContains(t, Write(filepath.Join(dir, "d.gguf"), Options{Preset: big, Type: gguf.F32}), "vocabulary")

	err = Write(filepath.Join(dir, "missing", "e.gguf"), Options{Preset: p, Type: gguf.F32})
	require.ErrorContains(t, err, "synth: output "+filepath.Join(dir, "missing", "e.gguf")+": the folder "+filepath.Join(dir, "missing")+" does not exist")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.Contains(e.Name(), ".tmp-"), "temporary file left: %s", e.Name())
	}
}

// failWriter fails after accepting n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestStreamChunks(t *testing.T) {
	gen := func(c int, buf []byte) ([]byte, error) {
		buf = growBytes(buf, 3)
		buf[0], buf[1], buf[2] = byte(c), byte(c>>8), 0xAA
		return buf, nil
	}
	var out bytes.Buffer
	var written int
	require.NoError(t, streamChunks(&out, 1000, gen, func(n int) { written += n }))
	require.Equal(t, 3000, written)
	for c := 0; c < 1000; c++ {
		require.Equal(t, []byte{byte(c), byte(c >> 8), 0xAA}, out.Bytes()[3*c:3*c+3], c)
	}

	err := streamChunks(&failWriter{n: 30}, 1000, gen, func(int) {})
	require.ErrorContains(t, err, "disk full")

	failing := func(c int, buf []byte) ([]byte, error) {
		if c == 500 {
			return nil, errors.New("chunk 500 failed")
		}
		return gen(c, buf)
	}
	written = 0
	err = streamChunks(io.Discard, 1000, failing, func(n int) { written += n })
	require.ErrorContains(t, err, "chunk 500 failed")
	require.Equal(t, 1500, written)
}
