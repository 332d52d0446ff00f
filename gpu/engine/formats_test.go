package engine

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Device-free tests of the format table and the repackers; the formats are
// checked on the device in kernels_test.go.

// blockLayout says where a block keeps its f16 scale fields, its quants and
// its packed sub-block scales (byte ranges; empty when absent).
type blockLayout struct {
	halves         []int
	quants, scales [2]int
}

var blockLayouts = map[gguf.Type]blockLayout{
	gguf.Q4_0: {halves: []int{0}, quants: [2]int{2, 18}},
	gguf.Q4_1: {halves: []int{0, 2}, quants: [2]int{4, 20}},
	gguf.Q5_0: {halves: []int{0}, quants: [2]int{2, 22}},
	gguf.Q5_1: {halves: []int{0, 2}, quants: [2]int{4, 24}},
	gguf.Q8_0: {halves: []int{0}, quants: [2]int{2, 34}},
	gguf.Q2_K: {halves: []int{80, 82}, quants: [2]int{16, 80}, scales: [2]int{0, 16}},
	gguf.Q3_K: {halves: []int{108}, quants: [2]int{0, 96}, scales: [2]int{96, 108}},
	gguf.Q4_K: {halves: []int{0, 2}, quants: [2]int{16, 144}, scales: [2]int{4, 16}},
	gguf.Q5_K: {halves: []int{0, 2}, quants: [2]int{16, 176}, scales: [2]int{4, 16}},
	gguf.Q6_K: {halves: []int{208}, quants: [2]int{0, 192}, scales: [2]int{192, 208}},
}

func TestEveryWeightTypeHasAGPUFormat(t *testing.T) {
	for _, typ := range gguf.SupportedTypes {
		f, ok := formats[typ]
		require.True(t, ok, "%s has no GPU format", typ)
		require.Equal(t, typ, f.typ)
	}
	require.Len(t, formats, len(gguf.SupportedTypes))
}

func TestFormatOfColumns(t *testing.T) {
	m := &model.Matrix{Name: "blk.3.ffn_up.weight", Type: gguf.Q4_K, Rows: 2, Cols: 96}
	_, err := formatOf(m)
	require.ErrorIs(t, err, ErrUnsupportedOnGPU)
	require.ErrorContains(t, err, "tensor blk.3.ffn_up.weight (Q4_K) has 96 columns; K-quants need a multiple of 256")
	m.Cols = 512
	_, err = formatOf(m)
	require.NoError(t, err)
	m = &model.Matrix{Name: "x", Type: gguf.Q4_0, Rows: 2, Cols: 48}
	_, err = formatOf(m)
	require.ErrorContains(t, err, "tensor x has 48 columns; the GPU kernels need a multiple of 32")
}

// TestRepackSizes pins the GPU bytes of one block (super-block) of each
// format against its file bytes: the same, except the K-quants' unpacked
// scale records.
func TestRepackSizes(t *testing.T) {
	want := map[gguf.Type]int{
		gguf.F32: 4, gguf.F16: 2, gguf.BF16: 2, gguf.Q8_0: 34,
		gguf.Q4_0: 18, gguf.Q4_1: 20, gguf.Q5_0: 22, gguf.Q5_1: 24,
		gguf.Q2_K: 84, gguf.Q3_K: 116, gguf.Q4_K: 148, gguf.Q5_K: 180, gguf.Q6_K: 212,
	}
	for typ, f := range formats {
		n := 8
		q, s := f.repack(make([]byte, n*typ.BlockBytes()), n)
		require.Equal(t, n*want[typ], len(q)+len(s), "%s", typ)
		if typ.BlockElems() == qkK {
			require.Len(t, s, n*kScaleRecord, "%s scales", typ)
		}
	}
}

// TestBitPlaneGathers checks nibWord, crumbHalf and bitByte against
// field-by-field gathering, on random bytes at every shift.
func TestBitPlaneGathers(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	b := make([]byte, 8)
	for n := 0; n < 200; n++ {
		rng.Read(b)
		for shift := uint(0); shift < 8; shift++ {
			var nib uint32
			var crumb uint16
			var bits byte
			for j := 0; j < 8; j++ {
				nib |= uint32(b[j]>>shift&0xf) << (4 * j)
				crumb |= uint16(b[j]>>shift&3) << (2 * j)
				bits |= (b[j] >> shift & 1) << j
			}
			if shift <= 4 {
				require.Equal(t, nib, nibWord(b, shift), "nibWord(% x, %d)", b, shift)
			}
			if shift <= 6 {
				require.Equal(t, crumb, crumbHalf(b, shift), "crumbHalf(% x, %d)", b, shift)
			}
			require.Equal(t, bits, bitByte(b, shift), "bitByte(% x, %d)", b, shift)
		}
	}
}

// TestRepackKeepsEveryQuantBit checks that the repackers are injective on
// the quant and scale bits: flipping any one bit of a block's quants (or
// packed scales) changes the planes.
func TestRepackKeepsEveryQuantBit(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for typ, f := range formats {
		lay, ok := blockLayouts[typ]
		if !ok {
			continue
		}
		blk := make([]byte, typ.BlockBytes())
		rng.Read(blk)
		q0, s0 := f.repack(blk, 1)
		base := string(q0) + "|" + string(s0)
		seen := map[string]int{base: -1}
		for _, r := range [][2]int{lay.quants, lay.scales} {
			for i := r[0]; i < r[1]; i++ {
				for bit := 0; bit < 8; bit++ {
					blk[i] ^= 1 << bit
					q, s := f.repack(blk, 1)
					key := string(q) + "|" + string(s)
					blk[i] ^= 1 << bit
					prev, dup := seen[key]
					require.False(t, dup, "%s: flipping byte %d bit %d gives the planes of %d", typ, i, bit, prev)
					seen[key] = 8*i + bit
				}
			}
		}
	}
}
