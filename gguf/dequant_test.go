package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/stretchr/testify/require"
)

// spec §5.1: block byte k is (37k + 11) mod 256, then f16 fields overwritten.
func TestSpecVectors(t *testing.T) {
	const (
		half    = 0x3800 // 0.5
		quarter = 0x3400 // 0.25
		minus1  = 0xBC00 // -1.0
	)
	type f16Field struct {
		at  int
		val uint16
	}
	cases := []struct {
		typ    Type
		fields []f16Field
		want   map[int]float32
		sum    float32
	}{
		{Q4_0, []f16Field{{0, half}}, map[int]float32{0: -1.5, 1: 1, 15: -4, 16: -1.5, 17: -0.5, 31: 0}, -10.5},
		{Q4_1, []f16Field{{0, half}, {2, minus1}}, map[int]float32{0: 6.5, 1: 1, 15: 4, 16: 3.5, 17: 5, 31: 5}, 90.5},
		{Q5_0, []f16Field{{0, half}}, map[int]float32{0: 4.5, 1: -1, 15: -6, 16: 7, 17: 0, 31: 0.5}, 7.5},
		{Q5_1, []f16Field{{0, half}, {2, minus1}}, map[int]float32{0: 8.5, 1: 11, 15: 14, 16: 8.5, 17: 1.5, 31: 1.5}, 220.5},
		{Q8_0, []f16Field{{0, half}}, map[int]float32{0: 42.5, 1: 61, 15: -64, 16: -45.5, 17: -27, 31: -24}, -88},
		{Q2_K, []f16Field{{80, half}, {82, quarter}}, map[int]float32{
			0: 16.5, 1: 0, 16: -0.75, 31: -0.75, 32: 3.75, 63: 3.25, 64: 5.25, 100: 10, 127: 21, 128: 3.75, 200: 4, 255: 2.25}, 1029.5},
		{Q3_K, []f16Field{{108, half}}, map[int]float32{
			0: 40.5, 1: -54, 16: -48, 31: 32, 32: -11, 63: 5, 64: 17, 100: 0, 127: 36, 128: 1, 200: 12.5, 255: 21}, 479},
		{Q4_K, []f16Field{{0, half}, {2, quarter}}, map[int]float32{
			0: 157.75, 1: -12.75, 16: 157.75, 31: 80.25, 32: 4, 63: 20, 64: 210.25, 100: 47.5, 127: 40.5, 128: 211.5, 200: 69.25, 255: 24.25}, 27220},
		{Q5_K, []f16Field{{0, half}, {2, quarter}}, map[int]float32{
			0: 405.75, 1: -12.75, 16: 405.75, 31: 80.25, 32: 56, 63: 40, 64: 210.25, 100: 117.5, 127: -1.5, 128: 523.5, 200: 69.25, 255: 54.25}, 58108},
		{Q6_K, []f16Field{{208, half}}, map[int]float32{
			0: -715.5, 1: 848, 16: -216, 31: -48, 32: 115.5, 63: -290, 64: -1520, 100: 1261.5, 127: 750, 128: -175.5, 200: 544.5, 255: -30}, 2306},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			blk := make([]byte, c.typ.BlockBytes())
			for k := range blk {
				blk[k] = byte((37*k + 11) % 256)
			}
			for _, f := range c.fields {
				binary.LittleEndian.PutUint16(blk[f.at:], f.val)
			}
			y := make([]float32, c.typ.BlockElems())
			require.NoError(t, DequantizeRow(c.typ, blk, y))
			for i, want := range c.want {
				require.Equal(t, want, y[i], "y[%d]", i)
			}
			var sum float64
			for _, v := range y {
				sum += float64(v)
			}
			require.Equal(t, float64(c.sum), sum)
		})
	}
}

// fixtureTypes maps the type part of the fixture file names to the type of
// blk.0.time_mix_key.weight in that file.
var fixtureTypes = []struct {
	file string
	typ  Type
}{
	{"F32", F32}, {"F16", F16}, {"BF16", BF16}, {"Q8_0", Q8_0}, {"Q4_0", Q4_0}, {"Q4_1", Q4_1},
	{"Q5_0", Q5_0}, {"Q5_1", Q5_1}, {"Q2_K", Q2_K}, {"Q3_K_M", Q3_K}, {"Q4_K_M", Q4_K},
	{"Q5_K_M", Q5_K}, {"Q6_K", Q6_K},
}

// readF32File reads a little-endian float32 file.
func readF32File(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Zero(t, len(raw)%4)
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// requireBitsEqual compares two float32 slices bit for bit and reports the
// first mismatch.
func requireBitsEqual(t *testing.T, want, got []float32) {
	t.Helper()
	require.Equal(t, len(want), len(got), "length")
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("first mismatch at index %d: want %g (0x%08x), got %g (0x%08x)",
				i, want[i], math.Float32bits(want[i]), got[i], math.Float32bits(got[i]))
		}
	}
}

// dequantTensor dequantizes a whole tensor.
func dequantTensor(t *testing.T, f *File, name string) (*TensorInfo, []float32) {
	t.Helper()
	ti, ok := f.Tensor(name)
	require.True(t, ok, "tensor %s", name)
	data, err := f.TensorData(ti)
	require.NoError(t, err)
	out := make([]float32, ti.Elements())
	require.NoError(t, DequantizeRow(ti.Type, data, out))
	return ti, out
}

func TestFixtureDequantBitExact(t *testing.T) {
	for _, ft := range fixtureTypes {
		t.Run(ft.file, func(t *testing.T) {
			f, err := Open(fixtures.Path(t, "tiny", "rwkv7-tiny-"+ft.file+".gguf"))
			require.NoError(t, err)
			defer f.Close()
			ti, got := dequantTensor(t, f, "blk.0.time_mix_key.weight")
			require.Equal(t, ft.typ, ti.Type)
			require.Equal(t, []uint64{256, 256}, ti.Dims)
			var want []float32
			if ft.typ == F32 {
				// No reference file: the stored floats are the values.
				data, err := f.TensorData(ti)
				require.NoError(t, err)
				for i := 0; i < len(data); i += 4 {
					want = append(want, math.Float32frombits(binary.LittleEndian.Uint32(data[i:])))
				}
			} else {
				want = readF32File(t, fixtures.Path(t, "tiny", "dequant", "rwkv7-tiny-"+ft.file+".blk.0.time_mix_key.weight.f32"))
			}
			requireBitsEqual(t, want, got)

			// Row by row through ReadTensorRows gives the same values.
			rowBytes, err := ti.Type.RowBytes(256)
			require.NoError(t, err)
			buf := make([]byte, 3*rowBytes)
			require.NoError(t, f.ReadTensorRows(ti, 100, 3, buf))
			rows := make([]float32, 3*256)
			require.NoError(t, DequantizeRow(ti.Type, buf, rows))
			requireBitsEqual(t, want[100*256:103*256], rows)
		})
	}
	t.Run("Q4_K_M output Q6_K", func(t *testing.T) {
		f, err := Open(fixtures.Path(t, "tiny", "rwkv7-tiny-Q4_K_M.gguf"))
		require.NoError(t, err)
		defer f.Close()
		ti, got := dequantTensor(t, f, "output.weight")
		require.Equal(t, Q6_K, ti.Type)
		require.Equal(t, []uint64{256, 1024}, ti.Dims)
		requireBitsEqual(t, readF32File(t, fixtures.Path(t, "tiny", "dequant", "rwkv7-tiny-Q4_K_M.output.weight.f32")), got)
	})
}

func TestDequantizeRowErrors(t *testing.T) {
	dst := make([]float32, 256)
	err := DequantizeRow(Q4_K, make([]byte, 143), dst)
	require.ErrorContains(t, err, "256 elements take 144 bytes, got a buffer of 143 bytes")
	err = DequantizeRow(Q4_K, make([]byte, 144), dst[:100])
	require.ErrorContains(t, err, "100 elements is not a multiple of the block size 256")
	err = DequantizeRow(Type(23), make([]byte, 136), dst)
	require.ErrorIs(t, err, ErrUnsupportedType)
	require.ErrorContains(t, err, "IQ4_XS (id 23)")
	err = DequantizeRow(Type(99), nil, nil)
	require.ErrorIs(t, err, ErrUnsupportedType)
	require.ErrorContains(t, err, "type(99) (id 99)")
	require.NoError(t, DequantizeRow(Q8_0, nil, nil)) // zero blocks is fine
	err = QuantizeRow(Q8_0, make([]float32, 32), make([]byte, 33))
	require.ErrorContains(t, err, "32 elements take 34 bytes, got a buffer of 33 bytes")
	require.ErrorIs(t, QuantizeRow(Q8_K, make([]float32, 256), make([]byte, 292)), ErrUnsupportedType)
}
