package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// rb assembles raw GGUF bytes with full control, for malformed files.
type rb struct{ bytes.Buffer }

func (r *rb) u8(x uint8) *rb   { r.WriteByte(x); return r }
func (r *rb) u32(x uint32) *rb { r.Write(binary.LittleEndian.AppendUint32(nil, x)); return r }
func (r *rb) u64(x uint64) *rb { r.Write(binary.LittleEndian.AppendUint64(nil, x)); return r }
func (r *rb) str(s string) *rb { r.u64(uint64(len(s))); r.WriteString(s); return r }

// kv appends a key and a value type; the caller appends the value.
func (r *rb) kv(key string, t ValueType) *rb { return r.str(key).u32(uint32(t)) }

// tensor appends a tensor info.
func (r *rb) tensor(name string, t Type, off uint64, dims ...uint64) *rb {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(t)).u64(off)
}

// file returns header + body, padded to align, + data.
func rawFile(version uint32, nTensors, nKV uint64, body func(r *rb), align int, data []byte) []byte {
	r := &rb{}
	r.WriteString("GGUF")
	r.u32(version).u64(nTensors).u64(nKV)
	if body != nil {
		body(r)
	}
	for align > 0 && r.Len()%align != 0 {
		r.u8(0)
	}
	r.Write(data)
	return r.Bytes()
}

func parseBytes(b []byte) (*File, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), "bad.gguf")
}

func TestBadInput(t *testing.T) {
	f32x := func(n int) []byte { return make([]byte, 4*n) }
	cases := []struct {
		name string
		file []byte
		want string // substring of the error
	}{
		{"empty file", nil, "offset 0 (header magic): file truncated: need 4 bytes, 0 left"},
		{"wrong magic", append([]byte("GGML"), make([]byte, 20)...), `offset 0 (header magic): bad magic "GGML"`},
		{"version 0", rawFile(0, 0, 0, nil, 0, nil), "offset 4 (header version): version 0 is not valid, expected 2 or 3"},
		{"version 1", rawFile(1, 0, 0, nil, 0, nil), "version 1 (32-bit counts) is not supported"},
		{"version 4", rawFile(4, 0, 0, nil, 0, nil), "version 4 is not supported, expected 2 or 3"},
		{"version byte-swapped", rawFile(0x03000000, 0, 0, nil, 0, nil), "version 0x03000000 has its low 16 bits zero: a big-endian"},
		{"truncated version", []byte("GGUF\x03\x00"), "offset 4 (header version): file truncated: need 4 bytes, 2 left"},
		{"absurd tensor count", rawFile(3, 1<<62, 0, nil, 0, nil), "offset 8 (header tensor_count): tensor count 4611686018427387904 cannot fit in the 8 bytes left"},
		{"tensor count too big for file", rawFile(3, 2, 0, func(r *rb) { r.Write(make([]byte, 40)) }, 0, nil), "tensor count 2 cannot fit in the 48 bytes left"},
		{"absurd KV count", rawFile(3, 0, 1<<63, nil, 0, nil), "offset 16 (header metadata_kv_count): metadata KV count 9223372036854775808 cannot fit"},
		{"absurd key length", rawFile(3, 0, 1, func(r *rb) { r.u64(1 << 40).u64(0) }, 0, nil), "offset 24 (metadata KV 0 key): string length 1099511627776 exceeds the 8 bytes left"},
		{"absurd string value length", rawFile(3, 0, 1, func(r *rb) { r.kv("k", TypeString).u64(1<<64 - 1) }, 0, nil), `(key "k" value): string length 18446744073709551615 exceeds the 0 bytes left`},
		{"absurd array length", rawFile(3, 0, 1, func(r *rb) { r.kv("k", TypeArray).u32(uint32(TypeUint32)).u64(1 << 61).u64(0) }, 0, nil), `(key "k" value): array length 2305843009213693952 cannot fit in the 8 bytes left in the file (each item takes at least 4 bytes)`},
		{"absurd string array length", rawFile(3, 0, 1, func(r *rb) { r.kv("k", TypeArray).u32(uint32(TypeString)).u64(3).u64(0) }, 0, nil), "array length 3 cannot fit in the 8 bytes left"},
		{"string in array past end", rawFile(3, 0, 1, func(r *rb) { r.kv("k", TypeArray).u32(uint32(TypeString)).u64(2).str("ab").u64(100) }, 0, nil), `(key "k" value): string length 100 exceeds the 0 bytes left`},
		{"duplicate key", rawFile(3, 0, 2, func(r *rb) { r.kv("a.b", TypeUint8).u8(1).kv("a.b", TypeUint8).u8(2) }, 0, nil), `offset 40 (metadata KV 1 key): duplicate key "a.b" (first at KV 0, offset 24)`},
		{"empty key", rawFile(3, 0, 1, func(r *rb) { r.kv("", TypeUint8).u8(1) }, 0, nil), "offset 24 (metadata KV 0 key): empty key"},
		{"unknown value type", rawFile(3, 0, 1, func(r *rb) { r.kv("k", ValueType(13)).u64(0) }, 0, nil), `offset 33 (key "k" value): unknown value type 13 (valid: 0..12)`},
		{"huge value type", rawFile(3, 0, 1, func(r *rb) { r.kv("k", ValueType(1<<31)).u64(0) }, 0, nil), "unknown value type 2147483648"},
		{"nested array", rawFile(3, 0, 1, func(r *rb) { r.kv("k", TypeArray).u32(uint32(TypeArray)).u64(1).u32(0).u64(0) }, 0, nil), `offset 37 (key "k" value): nested arrays are not supported`},
		{"unknown array element type", rawFile(3, 0, 1, func(r *rb) { r.kv("k", TypeArray).u32(77).u64(0) }, 0, nil), "unknown array element type 77"},
		{"alignment wrong type", rawFile(3, 0, 1, func(r *rb) { r.kv("general.alignment", TypeInt32).u32(32) }, 0, nil), `offset 24 (key "general.alignment"): has type INT32, expected UINT32`},
		{"alignment array", rawFile(3, 0, 1, func(r *rb) { r.kv("general.alignment", TypeArray).u32(uint32(TypeUint32)).u64(1).u32(32) }, 0, nil), "has type ARRAY of UINT32, expected UINT32"},
		{"alignment not power of two", rawFile(3, 0, 1, func(r *rb) { r.kv("general.alignment", TypeUint32).u32(48) }, 0, nil), "alignment 48 is not a power of two"},
		{"alignment zero", rawFile(3, 0, 1, func(r *rb) { r.kv("general.alignment", TypeUint32).u32(0) }, 0, nil), "alignment 0 is not a power of two"},
		{"empty tensor name", rawFile(3, 1, 0, func(r *rb) { r.tensor("", F32, 0, 4) }, 32, f32x(4)), "offset 24 (tensor 0 name): empty tensor name"},
		{"long tensor name", rawFile(3, 1, 0, func(r *rb) { r.tensor(string(bytes.Repeat([]byte("x"), 64)), F32, 0, 4) }, 32, f32x(4)), "is 64 bytes, at most 63 allowed"},
		{"duplicate tensor", rawFile(3, 2, 0, func(r *rb) { r.tensor("w", F32, 0, 4).tensor("w", F32, 32, 4) }, 32, f32x(16)), `(tensor 1 name): duplicate tensor name "w" (first is tensor 0)`},
		{"n_dims 0", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0) }, 32, nil), `offset 33 (tensor "w" n_dims): n_dims 0, expected 1..4`},
		{"n_dims 5", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 1, 1, 1, 1, 1) }, 32, f32x(1)), `(tensor "w" n_dims): n_dims 5, expected 1..4`},
		{"dim negative", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 4, 1<<63) }, 32, nil), `offset 37 (tensor "w" dims): ne1 -9223372036854775808 is negative as int64`},
		{"dims overflow elements", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F16, 0, 1<<32, 1<<32) }, 32, nil), `(tensor "w" dims): dims [4294967296 4294967296] overflow: the element count does not fit in int64`},
		{"dims overflow bytes", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 1<<62) }, 32, nil), "overflow: the byte size does not fit in int64"},
		{"dims overflow bytes 2-D", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 1<<31, 1<<31) }, 32, nil), "overflow: the byte size does not fit in int64"},
		{"ne0 not a block multiple", rawFile(3, 1, 0, func(r *rb) { r.tensor("blk.0.x", Q4_K, 0, 300, 2) }, 32, nil), `gguf: bad.gguf: offset 43 (tensor "blk.0.x" dims): ne0 300 is not a multiple of the Q4_K block size 256`},
		{"unknown tensor type", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", Type(99), 0, 4) }, 32, nil), `(tensor "w" type): unknown or retired tensor type id 99: its block size is unknown`},
		{"retired tensor type", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", Type(4), 0, 32) }, 32, nil), "unknown or retired tensor type id 4"},
		{"offset not aligned", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 16, 4) }, 32, f32x(16)), `(tensor "w" offset): offset 16 is not a multiple of the alignment 32`},
		{"offset not aligned custom", rawFile(3, 1, 1, func(r *rb) { r.kv("general.alignment", TypeUint32).u32(64).tensor("w", F32, 32, 4) }, 64, f32x(32)), "offset 32 is not a multiple of the alignment 64"},
		{"data past end", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 16) }, 32, f32x(15)), `(tensor "w" offset): data [0, +64) runs past the end of the file: the data section starts at 64 and holds 60 bytes`},
		{"offset past end", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 1<<62, 1) }, 32, f32x(8)), "data [4611686018427387904, +4) runs past the end"},
		{"data section missing", rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 1) }, 0, nil), "the data section starts at 64 and holds 0 bytes"},
		{"overlap", rawFile(3, 2, 0, func(r *rb) { r.tensor("a", F32, 0, 16).tensor("b", F32, 32, 8) }, 32, f32x(32)), `(tensor "b" offset): data [32, 64) overlaps tensor "a" at [0, 64)`},
		{"overlap same offset", rawFile(3, 2, 0, func(r *rb) { r.tensor("a", F32, 0, 8).tensor("b", F32, 0, 8) }, 32, f32x(32)), `(tensor "b" offset): data [0, 32) overlaps tensor "a" at [0, 32)`},
		{"overlap out of order", rawFile(3, 2, 0, func(r *rb) { r.tensor("a", F32, 32, 16).tensor("b", F32, 0, 16) }, 32, f32x(64)), `(tensor "a" offset): data [32, 96) overlaps tensor "b" at [0, 64)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseBytes(c.file)
			require.Error(t, err)
			require.Nil(t, f)
			require.ErrorContains(t, err, c.want)
			require.Contains(t, err.Error(), "gguf: bad.gguf: offset ")
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "bad.gguf", fe.File)
		})
	}
}

func TestBadInputSentinels(t *testing.T) {
	_, err := parseBytes(rawFile(3, 1, 0, func(r *rb) { r.tensor("w", Type(99), 0, 4) }, 32, nil))
	require.ErrorIs(t, err, ErrUnsupportedType)
	_, err = parseBytes([]byte("GGUF\x03\x00\x00"))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = parseBytes(rawFile(3, 1, 0, func(r *rb) { r.tensor("w", F32, 0, 16) }, 32, make([]byte, 10)))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// Accepted oddities: tolerated the way llama.cpp tolerates them.
func TestTolerated(t *testing.T) {
	// A bool byte other than 0/1 reads as true (llama.cpp accepts any
	// non-zero byte).
	f, err := parseBytes(rawFile(3, 0, 2, func(r *rb) {
		r.kv("b", TypeBool).u8(2)
		r.kv("bs", TypeArray).u32(uint32(TypeBool)).u64(3).u8(0).u8(1).u8(0xff)
	}, 0, nil))
	require.NoError(t, err)
	b, err := f.Bool("b")
	require.NoError(t, err)
	require.True(t, b)
	bs, _ := f.Get("bs")
	require.Equal(t, []bool{false, true, true}, bs.Any())

	// Offsets need not be dense or in order, only aligned, in bounds and
	// disjoint; trailing padding may be missing; empty tensors may sit
	// anywhere.
	f, err = parseBytes(rawFile(3, 3, 0, func(r *rb) {
		r.tensor("late", F32, 64, 4).tensor("early", F32, 0, 4).tensor("empty", F32, 1<<20, 0, 3)
	}, 32, make([]byte, 64+16)))
	require.NoError(t, err)
	require.Equal(t, uint64(64), f.Tensors[0].Offset)
	e, _ := f.Tensor("empty")
	data, err := f.TensorData(e)
	require.NoError(t, err)
	require.Empty(t, data)

	// No tensors and no padding after the header (a vocabulary-only file).
	f, err = parseBytes(rawFile(2, 0, 1, func(r *rb) { r.kv("k", TypeUint8).u8(1) }, 0, nil))
	require.NoError(t, err)
	require.Equal(t, uint32(2), f.Version)

	// A known but unsupported type parses (for `rwkv info`) and fails on use.
	f, err = parseBytes(rawFile(3, 1, 0, func(r *rb) { r.tensor("blk.0.x", Type(23), 0, 256, 2) }, 32, make([]byte, 2*136)))
	require.NoError(t, err)
	ti, _ := f.Tensor("blk.0.x")
	require.Equal(t, uint64(272), ti.Size)
	_, err = f.TensorData(ti)
	require.ErrorIs(t, err, ErrUnsupportedType)
	require.EqualError(t, err, `gguf: bad.gguf: tensor "blk.0.x" has type IQ4_XS (id 23), not supported`)
	require.ErrorIs(t, f.ReadTensorRows(ti, 0, 1, make([]byte, 136)), ErrUnsupportedType)
}

// TestTruncated cuts a valid file at every byte: each prefix either fails
// with a FormatError or, when the cut only removes trailing padding, parses.
func TestTruncated(t *testing.T) {
	w := NewWriter()
	w.SetString("general.architecture", "rwkv7")
	w.SetStrings("tokenizer.ggml.tokens", []string{"<s>", "a", "bc", ""})
	w.SetInt32s("tokenizer.ggml.token_type", []int32{3, 1, 1, 1})
	w.SetFloat32("eps", 1e-5)
	w.SetBool("flag", true)
	w.Set("f64", Float64Value(2.5))
	require.NoError(t, w.AddTensor("a", F32, []uint64{3}, make([]byte, 12)))
	require.NoError(t, w.AddTensor("b", Q8_0, []uint64{32, 2}, make([]byte, 68)))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	full := buf.Bytes()
	f, err := parseBytes(full)
	require.NoError(t, err)
	lastEnd := int(f.DataOffset + f.Tensors[1].Offset + f.Tensors[1].Size)
	for cut := range len(full) {
		g, err := parseBytes(full[:cut])
		if cut >= lastEnd {
			require.NoError(t, err, "cut %d", cut)
			require.NotNil(t, g)
			continue
		}
		require.Error(t, err, "cut %d", cut)
		var fe *FormatError
		require.ErrorAs(t, err, &fe, "cut %d", cut)
		require.LessOrEqual(t, fe.Offset, int64(len(full)), "cut %d", cut)
	}
}

// errReaderAt fails every read at or beyond failAt.
type errReaderAt struct {
	data   []byte
	failAt int64
}

var errDisk = errors.New("disk on fire")

func (r *errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.failAt {
		n := max(0, int(r.failAt-off))
		copy(p, r.data[off:off+int64(n)])
		return n, errDisk
	}
	return copy(p, r.data[off:]), nil
}

func TestReaderErrors(t *testing.T) {
	raw, _, _ := buildFile(t, 3, 0)
	_, err := Parse(&errReaderAt{raw, 100}, int64(len(raw)), "io.gguf")
	require.ErrorIs(t, err, errDisk)
	require.ErrorContains(t, err, "gguf: io.gguf: offset")
	require.ErrorContains(t, err, "read error: disk on fire")

	// Header fine, data read fails later.
	f, err := Parse(bytes.NewReader(raw), int64(len(raw)), "io.gguf")
	require.NoError(t, err)
	g, err := Parse(&errReaderAt{raw, int64(f.DataOffset) + 1}, int64(len(raw)), "io.gguf")
	require.NoError(t, err)
	_, err = g.TensorData(&g.Tensors[0])
	require.ErrorIs(t, err, errDisk)
	require.ErrorContains(t, err, `gguf: io.gguf: reading tensor "w.f32.weight"`)

	_, err = Parse(bytes.NewReader(raw), -1, "neg.gguf")
	require.ErrorContains(t, err, "negative size")
	_, err = Parse(nil, 10, "nil.gguf")
	require.ErrorContains(t, err, "nil reader")

	_, err = Open(filepath.Join(t.TempDir(), "missing.gguf"))
	require.ErrorIs(t, err, os.ErrNotExist)
	empty := filepath.Join(t.TempDir(), "empty.gguf")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = Open(empty)
	require.ErrorContains(t, err, fmt.Sprintf("gguf: %s: offset 0 (header magic): file truncated", empty))
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	require.NoError(t, os.WriteFile(bad, []byte("GGUF\x01\x00\x00\x00"), 0o644))
	_, err = Open(bad)
	require.ErrorContains(t, err, "version 1")
}
