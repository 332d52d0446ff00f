package gguf

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/stretchr/testify/require"
)

// allValues is one value of every scalar type and an array of every element
// type, including empty arrays.
func allValues(t testing.TB) []KV {
	t.Helper()
	arr := func(elem ValueType, x any) Value {
		v, err := ArrayValue(elem, x)
		require.NoError(t, err)
		return v
	}
	return []KV{
		{"t.u8", Uint8Value(200)},
		{"t.i8", Int8Value(-100)},
		{"t.u16", Uint16Value(60000)},
		{"t.i16", Int16Value(-30000)},
		{"t.u32", Uint32Value(4000000000)},
		{"t.i32", Int32Value(-2000000000)},
		{"t.f32", Float32Value(1.5e-5)},
		{"t.bool.true", BoolValue(true)},
		{"t.bool.false", BoolValue(false)},
		{"t.str", StringValue("héllo\x00world")},
		{"t.str.empty", StringValue("")},
		{"t.u64", Uint64Value(1 << 63)},
		{"t.i64", Int64Value(-1 << 62)},
		{"t.f64", Float64Value(math.Pi)},
		{"a.u8", arr(TypeUint8, []uint8{0, 1, 255})},
		{"a.i8", arr(TypeInt8, []int8{-128, 0, 127})},
		{"a.u16", arr(TypeUint16, []uint16{1, 65535})},
		{"a.i16", arr(TypeInt16, []int16{-32768, 32767})},
		{"a.u32", arr(TypeUint32, []uint32{7, 1 << 31})},
		{"a.i32", arr(TypeInt32, []int32{-1, 3, 5})},
		{"a.f32", arr(TypeFloat32, []float32{0.5, float32(math.Inf(-1))})},
		{"a.bool", arr(TypeBool, []bool{true, false, true})},
		{"a.str", arr(TypeString, []string{"a", "", "ccc", "\n\n"})},
		{"a.u64", arr(TypeUint64, []uint64{1 << 40})},
		{"a.i64", arr(TypeInt64, []int64{-1 << 40, 2})},
		{"a.f64", arr(TypeFloat64, []float64{-0.25})},
		{"a.empty.str", arr(TypeString, []string{})},
		{"a.empty.u32", arr(TypeUint32, nil)},
		{"a.empty.f64", arr(TypeFloat64, []float64{})},
	}
}

type testTensor struct {
	name string
	typ  Type
	dims []uint64
	data []byte
}

// testTensors returns one tensor of every supported type (quantized random
// data), a 4-D tensor with trailing 1s, an empty tensor and an IQ4_XS
// tensor (known size, not supported).
func testTensors(t testing.TB) []testTensor {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	var out []testTensor
	for i, typ := range SupportedTypes {
		dims := []uint64{uint64(256 * (1 + i%2)), uint64(1 + i%3)}
		n := int(dims[0] * dims[1])
		x := make([]float32, n)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		data := make([]byte, must(typ.RowBytes(n)))
		require.NoError(t, QuantizeRow(typ, x, data))
		out = append(out, testTensor{fmt.Sprintf("w.%s.weight", strings.ToLower(typ.String())), typ, dims, data})
	}
	lerp := make([]byte, 4*8*6)
	require.NoError(t, QuantizeRow(F32, make([]float32, 8*6), lerp))
	out = append(out,
		testTensor{"lerp_fused", F32, []uint64{8, 1, 1, 6}, lerp},
		testTensor{"empty", F16, []uint64{0, 5}, nil},
		testTensor{"iq4xs", Type(23), []uint64{256}, bytes.Repeat([]byte{7}, 136)},
	)
	return out
}

func buildFile(t testing.TB, version, alignment uint32) ([]byte, []KV, []testTensor) {
	t.Helper()
	w := NewWriter()
	if version != 0 {
		w.SetVersion(version)
	}
	if alignment != 0 {
		w.SetAlignment(alignment)
	}
	kvs := allValues(t)
	for _, kv := range kvs {
		w.Set(kv.Key, kv.Value)
	}
	tensors := testTensors(t)
	for _, tt := range tensors {
		require.NoError(t, w.AddTensor(tt.name, tt.typ, tt.dims, tt.data))
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	if alignment != 0 {
		kvs = append([]KV{{alignmentKey, Uint32Value(alignment)}}, kvs...)
	}
	return buf.Bytes(), kvs, tensors
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct{ version, alignment uint32 }{{0, 0}, {2, 0}, {3, 64}, {2, 1}, {3, 4096}, {3, 8}} {
		t.Run(fmt.Sprintf("v%d-align%d", c.version, c.alignment), func(t *testing.T) {
			raw, kvs, tensors := buildFile(t, c.version, c.alignment)
			f, err := Parse(bytes.NewReader(raw), int64(len(raw)), "rt.gguf")
			require.NoError(t, err)
			defer f.Close()
			checkParsed(t, f, raw, kvs, tensors, c.version, c.alignment)

			// The same through a file and the memory mapping.
			path := filepath.Join(t.TempDir(), "rt.gguf")
			require.NoError(t, os.WriteFile(path, raw, 0o644))
			mf, err := Open(path)
			require.NoError(t, err)
			checkParsed(t, mf, raw, kvs, tensors, c.version, c.alignment)
			require.NoError(t, mf.Close())
			require.NoError(t, mf.Close()) // twice is harmless
			_, err = mf.TensorData(&mf.Tensors[0])
			require.ErrorContains(t, err, "closed")
		})
	}
}

func checkParsed(t *testing.T, f *File, raw []byte, kvs []KV, tensors []testTensor, version, alignment uint32) {
	t.Helper()
	if version == 0 {
		version = 3
	}
	if alignment == 0 {
		alignment = 32
	}
	require.Equal(t, version, f.Version)
	require.Equal(t, uint64(alignment), f.Alignment)
	require.Equal(t, int64(len(raw)), f.Size)
	require.Zero(t, f.DataOffset%f.Alignment)
	require.Zero(t, len(raw)%int(alignment), "file ends padded")

	require.Len(t, f.KVs, len(kvs))
	for i, kv := range kvs {
		require.Equal(t, kv.Key, f.KVs[i].Key, "KV order")
		require.Equal(t, kv.Value.Type(), f.KVs[i].Value.Type(), kv.Key)
		require.Equal(t, kv.Value.ElemType(), f.KVs[i].Value.ElemType(), kv.Key)
		require.Equal(t, kv.Value.Len(), f.KVs[i].Value.Len(), kv.Key)
		require.Equal(t, kv.Value.Any(), f.KVs[i].Value.Any(), kv.Key)
		got, ok := f.Get(kv.Key)
		require.True(t, ok)
		require.Equal(t, kv.Value.Any(), got.Any())
	}

	require.Len(t, f.Tensors, len(tensors))
	var next uint64
	for i, tt := range tensors {
		ti := &f.Tensors[i]
		require.Equal(t, tt.name, ti.Name)
		require.Equal(t, tt.typ, ti.Type)
		require.Equal(t, tt.dims, ti.Dims, "dims kept as stored, trailing 1s too")
		require.Equal(t, uint64(len(tt.data)), ti.Size)
		require.Equal(t, next, ti.Offset, "dense offsets in file order")
		next = alignUp(ti.Offset+ti.Size, uint64(alignment))
		byName, ok := f.Tensor(tt.name)
		require.True(t, ok)
		require.Same(t, ti, byName)
		data, err := f.TensorData(ti)
		if !tt.typ.Supported() {
			require.ErrorIs(t, err, ErrUnsupportedType)
			require.ErrorContains(t, err, `tensor "iq4xs" has type IQ4_XS (id 23), not supported`)
			continue
		}
		require.NoError(t, err)
		if len(tt.data) == 0 {
			require.Empty(t, data)
		} else {
			require.Equal(t, tt.data, data)
		}
	}
	_, ok := f.Tensor("nope")
	require.False(t, ok)
}

func TestGetters(t *testing.T) {
	raw, _, _ := buildFile(t, 3, 0)
	f, err := Parse(bytes.NewReader(raw), int64(len(raw)), "file.gguf")
	require.NoError(t, err)

	s, err := f.String("t.str")
	require.NoError(t, err)
	require.Equal(t, "héllo\x00world", s)
	u32, err := f.Uint32("t.u32")
	require.NoError(t, err)
	require.Equal(t, uint32(4000000000), u32)
	u64, err := f.Uint64("t.u64")
	require.NoError(t, err)
	require.Equal(t, uint64(1<<63), u64)
	i32, err := f.Int32("t.i32")
	require.NoError(t, err)
	require.Equal(t, int32(-2000000000), i32)
	f32, err := f.Float32("t.f32")
	require.NoError(t, err)
	require.Equal(t, float32(1.5e-5), f32)
	b, err := f.Bool("t.bool.true")
	require.NoError(t, err)
	require.True(t, b)
	ss, err := f.Strings("a.str")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "", "ccc", "\n\n"}, ss)
	ss[0] = "changed" // a copy
	ss, _ = f.Strings("a.str")
	require.Equal(t, "a", ss[0])
	is, err := f.Int32s("a.i32")
	require.NoError(t, err)
	require.Equal(t, []int32{-1, 3, 5}, is)
	us, err := f.Uint32s("a.u32")
	require.NoError(t, err)
	require.Equal(t, []uint32{7, 1 << 31}, us)
	us, err = f.Uint32s("a.empty.u32")
	require.NoError(t, err)
	require.Empty(t, us)

	_, err = f.Uint32("rwkv7.block_count")
	require.ErrorIs(t, err, ErrKeyNotFound)
	require.EqualError(t, err, `gguf: file.gguf: key "rwkv7.block_count" not found`)
	_, err = f.Uint32("t.i32")
	require.EqualError(t, err, `gguf: file.gguf: key "t.i32" has type INT32, expected UINT32`)
	_, err = f.Uint32("t.u64")
	require.EqualError(t, err, `gguf: file.gguf: key "t.u64" has type UINT64, expected UINT32`)
	_, err = f.Strings("a.i32")
	require.EqualError(t, err, `gguf: file.gguf: key "a.i32" has type ARRAY of INT32, expected ARRAY of STRING`)
	_, err = f.Int32s("t.i32")
	require.EqualError(t, err, `gguf: file.gguf: key "t.i32" has type INT32, expected ARRAY of INT32`)
	for _, get := range []func(string) error{
		func(k string) error { _, err := f.String(k); return err },
		func(k string) error { _, err := f.Uint64(k); return err },
		func(k string) error { _, err := f.Int32(k); return err },
		func(k string) error { _, err := f.Float32(k); return err },
		func(k string) error { _, err := f.Bool(k); return err },
		func(k string) error { _, err := f.Strings(k); return err },
		func(k string) error { _, err := f.Int32s(k); return err },
		func(k string) error { _, err := f.Uint32s(k); return err },
	} {
		require.ErrorIs(t, get("missing.key"), ErrKeyNotFound)
		require.ErrorContains(t, get("t.f64"), `key "t.f64" has type FLOAT64, expected`)
	}
}

func TestValue(t *testing.T) {
	require.Equal(t, "UINT32", TypeUint32.String())
	require.Equal(t, "FLOAT64", TypeFloat64.String())
	require.Equal(t, "ARRAY", TypeArray.String())
	require.Equal(t, "valuetype(13)", ValueType(13).String())

	require.Equal(t, "42", Uint32Value(42).String())
	require.Equal(t, `"a\nb"`, StringValue("a\nb").String())
	require.Equal(t, "true", BoolValue(true).String())
	require.Equal(t, "1e-05", Float32Value(1e-5).String())
	long := make([]int32, 100)
	for i := range long {
		long[i] = int32(i)
	}
	require.Equal(t, "[0, 1, 2, 3, 4, 5, 6, 7, ... (92 more)]", Int32sValue(long).String())
	require.Equal(t, `["x", "y"]`, StringsValue([]string{"x", "y"}).String())
	require.Equal(t, "[]", StringsValue(nil).String())
	require.Equal(t, "<invalid>", Value{}.String())
	require.Nil(t, Value{}.Any())
	require.Zero(t, Value{}.Len())

	v := Int32sValue(long)
	require.Equal(t, TypeArray, v.Type())
	require.Equal(t, TypeInt32, v.ElemType())
	require.Equal(t, 100, v.Len())
	require.Equal(t, TypeString, StringValue("s").ElemType())
	require.Equal(t, 1, StringValue("s").Len())

	_, err := ArrayValue(TypeUint32, []int32{1})
	require.ErrorContains(t, err, "array of UINT32 needs a []uint32, got []int32")
	_, err = ArrayValue(TypeArray, []int32{1})
	require.ErrorContains(t, err, "not supported")
	_, err = ArrayValue(ValueType(13), []int32{1})
	require.ErrorContains(t, err, "not supported")
}

func TestTensorInfoHelpers(t *testing.T) {
	ti := TensorInfo{Name: "x", Dims: []uint64{256, 1024}}
	require.Equal(t, "{256, 1024}", ti.ShapeString())
	require.Equal(t, uint64(256*1024), ti.Elements())
	require.Equal(t, uint64(256), ti.Ne(0))
	require.Equal(t, uint64(1024), ti.Ne(1))
	require.Equal(t, uint64(1), ti.Ne(2))
	require.Equal(t, uint64(1), ti.Ne(3))
	require.Equal(t, uint64(1), ti.Ne(-1))
	ti4 := TensorInfo{Dims: []uint64{8, 1, 1, 6}}
	require.Equal(t, "{8, 1, 1, 6}", ti4.ShapeString())
	require.Equal(t, uint64(48), ti4.Elements())
}

func TestReadTensorRows(t *testing.T) {
	w := NewWriter()
	x := make([]float32, 64*5)
	for i := range x {
		x[i] = float32(i)
	}
	data := make([]byte, must(Q8_0.RowBytes(len(x))))
	require.NoError(t, QuantizeRow(Q8_0, x, data))
	require.NoError(t, w.AddTensor("m", Q8_0, []uint64{64, 5}, data))
	require.NoError(t, w.AddTensor("z", F32, []uint64{0, 3}, nil))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "rows.gguf")
	require.NoError(t, err)
	ti, _ := f.Tensor("m")
	dst := make([]byte, 2*68)
	require.NoError(t, f.ReadTensorRows(ti, 3, 2, dst))
	require.Equal(t, data[3*68:5*68], dst)
	require.ErrorContains(t, f.ReadTensorRows(ti, 4, 2, dst), "rows [4, 6) out of range, it has 5 rows")
	require.ErrorContains(t, f.ReadTensorRows(ti, -1, 1, dst), "out of range")
	require.ErrorContains(t, f.ReadTensorRows(ti, 0, 3, dst), "3 rows need 204 bytes, dst holds 136")
	require.NoError(t, f.ReadTensorRows(ti, 5, 0, nil))
	z, _ := f.Tensor("z")
	require.NoError(t, f.ReadTensorRows(z, 0, 0, nil))
	require.ErrorContains(t, f.ReadTensorRows(z, 0, 1, dst), "it has 0 rows")

	// A caller-modified TensorInfo cannot read outside the file.
	bad := *ti
	bad.Offset = 1 << 40
	_, err = f.TensorData(&bad)
	require.ErrorContains(t, err, "lies outside")
	bad = *ti
	bad.Size++
	_, err = f.TensorData(&bad)
	require.ErrorContains(t, err, "does not match its dims")
}

// rwkv7TensorNames lists the 6 + 28·L tensors of an rwkv7 file.
func rwkv7TensorNames(layers int) []string {
	names := []string{"token_embd.weight", "token_embd_norm.weight", "token_embd_norm.bias",
		"output_norm.weight", "output_norm.bias", "output.weight"}
	per := []string{"attn_norm.weight", "attn_norm.bias", "attn_norm_2.weight", "attn_norm_2.bias",
		"time_mix_lerp_fused.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
		"time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_v0.weight",
		"time_mix_v1.weight", "time_mix_v2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
		"time_mix_k_k.weight", "time_mix_k_a.weight", "time_mix_r_k.weight", "time_mix_key.weight",
		"time_mix_value.weight", "time_mix_receptance.weight", "time_mix_ln.weight", "time_mix_ln.bias",
		"time_mix_output.weight", "channel_mix_lerp_k.weight", "channel_mix_key.weight", "channel_mix_value.weight"}
	for i := range layers {
		for _, p := range per {
			names = append(names, fmt.Sprintf("blk.%d.%s", i, p))
		}
	}
	return names
}

func TestFixturesParse(t *testing.T) {
	for _, ft := range fixtureTypes {
		t.Run(ft.file, func(t *testing.T) {
			path := fixtures.Path(t, "tiny", "rwkv7-tiny-"+ft.file+".gguf")
			f, err := Open(path)
			require.NoError(t, err)
			defer f.Close()
			require.NotNil(t, f.data, "memory-mapped")

			arch, err := f.String("general.architecture")
			require.NoError(t, err)
			require.Equal(t, "rwkv7", arch)
			for key, want := range map[string]uint32{
				"rwkv7.block_count": 3, "rwkv7.embedding_length": 256, "rwkv7.feed_forward_length": 1024,
				"rwkv7.wkv.head_size": 64, "rwkv7.attention.decay_lora_rank": 32,
				"rwkv7.attention.iclr_lora_rank": 64, "rwkv7.attention.value_residual_mix_lora_rank": 32,
				"rwkv7.attention.gate_lora_rank": 96,
			} {
				got, err := f.Uint32(key)
				require.NoError(t, err, key)
				require.Equal(t, want, got, key)
			}
			eps, err := f.Float32("rwkv7.attention.layer_norm_epsilon")
			require.NoError(t, err)
			require.Equal(t, float32(1e-5), eps)
			tokens, err := f.Strings("tokenizer.ggml.tokens")
			require.NoError(t, err)
			require.Len(t, tokens, 1024)
			require.Equal(t, "<s>", tokens[0])
			types, err := f.Int32s("tokenizer.ggml.token_type")
			require.NoError(t, err)
			require.Len(t, types, 1024)

			names := rwkv7TensorNames(3)
			require.Len(t, f.Tensors, 6+28*3)
			for _, n := range names {
				_, ok := f.Tensor(n)
				require.True(t, ok, n)
			}
			shape := func(name string) string {
				ti, _ := f.Tensor(name)
				return ti.ShapeString()
			}
			require.Equal(t, "{256, 1024}", shape("token_embd.weight"))
			require.Equal(t, "{256, 1024}", shape("output.weight"))
			require.Equal(t, "{256, 1, 1, 6}", shape("blk.0.time_mix_lerp_fused.weight"))
			require.Equal(t, "{256, 32}", shape("blk.1.time_mix_w1.weight"))
			require.Equal(t, "{256, 64}", shape("blk.0.time_mix_v1.weight"))
			require.Equal(t, "{256, 32}", shape("blk.1.time_mix_v1.weight"))
			require.Equal(t, "{1024, 256}", shape("blk.2.channel_mix_value.weight"))

			key, _ := f.Tensor("blk.2.time_mix_key.weight")
			require.Equal(t, ft.typ, key.Type)
			lerp, _ := f.Tensor("blk.0.time_mix_lerp_fused.weight")
			require.Equal(t, F32, lerp.Type)

			// llama.cpp's rule holds: offsets dense and in file order.
			var next uint64
			for i := range f.Tensors {
				ti := &f.Tensors[i]
				require.Equal(t, next, ti.Offset, ti.Name)
				next = alignUp(ti.Offset+ti.Size, f.Alignment)
				require.True(t, ti.Type.Supported())
				data, err := f.TensorData(ti)
				require.NoError(t, err)
				row := make([]float32, ti.Ne(0))
				require.NoError(t, DequantizeRow(ti.Type, data[:must(ti.Type.RowBytes(int(ti.Ne(0))))], row))
			}
			require.Equal(t, uint64(f.Size), f.DataOffset+next)

			// Parse through a plain ReaderAt gives the same tables.
			fh, err := os.Open(path)
			require.NoError(t, err)
			defer fh.Close()
			g, err := Parse(fh, f.Size, path)
			require.NoError(t, err)
			require.Equal(t, f.Tensors, g.Tensors)
			require.Equal(t, f.KVs, g.KVs)
			require.Equal(t, f.DataOffset, g.DataOffset)
			a, _ := f.TensorData(&f.Tensors[5])
			b, _ := g.TensorData(&g.Tensors[5])
			require.Equal(t, a, b)
		})
	}
}

func TestVocabFixture(t *testing.T) {
	f, err := Open(fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf"))
	require.NoError(t, err)
	defer f.Close()
	require.Empty(t, f.Tensors)
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	require.NoError(t, err)
	require.Len(t, tokens, 65536)
	v, _ := f.Get("tokenizer.ggml.tokens")
	require.Contains(t, v.String(), "... (65528 more)]")
}
