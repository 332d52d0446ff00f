package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// Error bounds of the reference quantizers: the largest relative RMS error
// (‖y − x‖ / ‖x‖ over a 16384-element tensor) on Gaussian data, and on any
// of the test distributions (the worst is Gaussian with 2% tenfold
// outliers). Measured values (gaussian / worst): F16 0.00021 / 0.00021,
// BF16 0.0016 / 0.0017, Q8_0 0.0054 / 0.010, Q6_K 0.018 / 0.030,
// Q5_K 0.038 / 0.052, Q5_1 0.038 / 0.051, Q5_0 0.042 / 0.081,
// Q4_K 0.078 / 0.109, Q4_1 0.078 / 0.108, Q4_0 0.086 / 0.156,
// Q3_K 0.156 / 0.198, Q2_K 0.329 / 0.398.
var quantBounds = map[Type]struct{ gaussian, worst float64 }{
	F32:  {0, 0},
	F16:  {0.0003, 0.0003},
	BF16: {0.0025, 0.0025},
	Q8_0: {0.007, 0.013},
	Q6_K: {0.025, 0.04},
	Q5_K: {0.05, 0.07},
	Q5_1: {0.05, 0.07},
	Q5_0: {0.055, 0.11},
	Q4_K: {0.10, 0.14},
	Q4_1: {0.10, 0.14},
	Q4_0: {0.11, 0.20},
	Q3_K: {0.20, 0.26},
	Q2_K: {0.40, 0.50},
}

// testInputs returns named test tensors of n elements.
func testInputs(n int) map[string][]float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(f func(i int) float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(f(i))
		}
		return x
	}
	return map[string][]float32{
		"gaussian":     gen(func(int) float64 { return rng.NormFloat64() }),
		"small":        gen(func(int) float64 { return 1e-3 * rng.NormFloat64() }),
		"large":        gen(func(int) float64 { return 100 * rng.NormFloat64() }),
		"uniform+":     gen(func(int) float64 { return rng.Float64() }),
		"uniform-":     gen(func(int) float64 { return -1 - rng.Float64() }),
		"offset":       gen(func(int) float64 { return 3 + 0.5*rng.NormFloat64() }),
		"row scales":   gen(func(i int) float64 { return math.Exp2(float64(i/256%16-8)) * rng.NormFloat64() }),
		"outliers":     gen(func(int) float64 { return rng.NormFloat64() * (1 + 9*float64(rng.IntN(50)/49)) }),
		"constant":     gen(func(int) float64 { return 0.75 }),
		"alternating":  gen(func(i int) float64 { return float64(1 - 2*(i%2)) }),
		"laplace-like": gen(func(int) float64 { return rng.ExpFloat64() * float64(1-2*rng.IntN(2)) }),
	}
}

func relRMS(x, y []float32) float64 {
	var num, den float64
	for i := range x {
		d := float64(y[i]) - float64(x[i])
		num += d * d
		den += float64(x[i]) * float64(x[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func TestQuantizeRoundTrip(t *testing.T) {
	const n = 64 * 256
	inputs := testInputs(n)
	for _, typ := range SupportedTypes {
		bound := quantBounds[typ].worst
		worst, worstName := 0.0, ""
		for name, x := range inputs {
			rb, err := typ.RowBytes(n)
			require.NoError(t, err)
			q := make([]byte, rb)
			require.NoError(t, QuantizeRow(typ, x, q))
			y := make([]float32, n)
			require.NoError(t, DequantizeRow(typ, q, y))
			e := relRMS(x, y)
			require.LessOrEqual(t, e, bound, "%s on %s", typ, name)
			if e > worst {
				worst, worstName = e, name
			}
			// Deterministic: the same input gives the same bytes.
			q2 := make([]byte, rb)
			require.NoError(t, QuantizeRow(typ, x, q2))
			require.Equal(t, q, q2)
		}
		g := inputs["gaussian"]
		q := make([]byte, must(typ.RowBytes(n)))
		require.NoError(t, QuantizeRow(typ, g, q))
		y := make([]float32, n)
		require.NoError(t, DequantizeRow(typ, q, y))
		require.LessOrEqual(t, relRMS(g, y), quantBounds[typ].gaussian, "%s on gaussian", typ)
		t.Logf("%-5s gaussian rel RMS %.5f, worst %.5f (%s)", typ, relRMS(g, y), worst, worstName)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestQuantizeZeroAndTiny(t *testing.T) {
	for _, typ := range SupportedTypes {
		for _, v := range []float32{0, 1e-30, -1e-30} {
			x := make([]float32, 256)
			for i := range x {
				x[i] = v
			}
			q := make([]byte, must(typ.RowBytes(256)))
			require.NoError(t, QuantizeRow(typ, x, q))
			y := make([]float32, 256)
			require.NoError(t, DequantizeRow(typ, q, y))
			for i := range y {
				require.False(t, math.IsNaN(float64(y[i])) || math.IsInf(float64(y[i]), 0), "%s(%g)[%d] = %g", typ, v, i, y[i])
				require.InDelta(t, 0, y[i], 1e-7, "%s(%g)[%d]", typ, v, i)
			}
		}
		// Values beyond the f16 range clamp the scale instead of making inf.
		if typ != F32 && typ != BF16 {
			x := make([]float32, 256)
			for i := range x {
				x[i] = float32(1e12 * float64(i%7-3))
			}
			q := make([]byte, must(typ.RowBytes(256)))
			require.NoError(t, QuantizeRow(typ, x, q))
			y := make([]float32, 256)
			require.NoError(t, DequantizeRow(typ, q, y))
			if typ != F16 { // F16 itself overflows to inf by definition
				for i := range y {
					require.False(t, math.IsNaN(float64(y[i])) || math.IsInf(float64(y[i]), 0), "%s huge [%d] = %g", typ, i, y[i])
				}
			}
		}
	}
}

// f16Fields lists the byte offsets of the f16 scale fields of each block type.
var f16Fields = map[Type][]int{
	Q4_0: {0}, Q4_1: {0, 2}, Q5_0: {0}, Q5_1: {0, 2}, Q8_0: {0},
	Q2_K: {80, 82}, Q3_K: {108}, Q4_K: {0, 2}, Q5_K: {0, 2}, Q6_K: {208},
}

// TestQuantizeExercisesEveryField quantizes random blocks with varying
// scales and offsets and checks that every bit of every quant and sub-scale
// byte is seen both set and clear, and that every f16 scale byte varies.
func TestQuantizeExercisesEveryField(t *testing.T) {
	for _, typ := range SupportedTypes[3:] {
		fields := f16Fields[typ]
		rng := rand.New(rand.NewPCG(3, uint64(typ)))
		be, bb := typ.BlockElems(), typ.BlockBytes()
		const blocks = 400
		x := make([]float32, blocks*be)
		for b := range blocks {
			scale := math.Exp2(float64(rng.IntN(20) - 10))
			for g := 0; g < be; g += 16 { // groups of 16 with their own range
				gs := scale * math.Exp2(-float64(rng.IntN(4)))
				offset := (rng.Float64()*2 - 1) * gs * float64(rng.IntN(3))
				for i := g; i < g+16; i++ {
					x[b*be+i] = float32(offset + gs*rng.NormFloat64())
				}
			}
		}
		q := make([]byte, blocks*bb)
		require.NoError(t, QuantizeRow(typ, x, q))
		isF16 := map[int]bool{}
		for _, f := range fields {
			isF16[f], isF16[f+1] = true, true
		}
		for k := range bb {
			var or, and byte = 0, 0xff
			seen := map[byte]bool{}
			for b := range blocks {
				v := q[b*bb+k]
				or, and = or|v, and&v
				seen[v] = true
			}
			if isF16[k] {
				require.Greater(t, len(seen), 1, "%s f16 byte %d is constant", typ, k)
				continue
			}
			require.Equal(t, byte(0xff), or, "%s byte %d: bits never set: %08b", typ, k, ^or)
			require.Equal(t, byte(0), and, "%s byte %d: bits never clear: %08b", typ, k, and)
		}
	}
}

// refDequant is a second, deliberately naive implementation of spec §5 that
// computes each element independently from its index.
func refDequant(typ Type, blk []byte) []float32 {
	h16 := func(at int) float32 { return F16ToF32(binary.LittleEndian.Uint16(blk[at:])) }
	y := make([]float32, typ.BlockElems())
	for e := range y {
		switch typ {
		case Q4_0, Q4_1, Q5_0, Q5_1:
			qsAt := map[Type]int{Q4_0: 2, Q4_1: 4, Q5_0: 6, Q5_1: 8}[typ]
			j := e % 16
			nib := int32(blk[qsAt+j] & 0xf)
			if e >= 16 {
				nib = int32(blk[qsAt+j] >> 4)
			}
			if typ == Q5_0 || typ == Q5_1 {
				qh := binary.LittleEndian.Uint32(blk[qsAt-4:])
				nib |= int32(qh>>e&1) << 4
			}
			switch typ {
			case Q4_0:
				y[e] = float32(nib-8) * h16(0)
			case Q5_0:
				y[e] = float32(nib-16) * h16(0)
			default:
				y[e] = float32(float32(nib)*h16(0)) + h16(2)
			}
		case Q8_0:
			y[e] = float32(int8(blk[2+e])) * h16(0)
		case Q2_K:
			h, r := e/128, e%128
			j, l := r/32, r%32
			q := int32(blk[16+32*h+l]>>(2*j)) & 3
			s := 8*h + 2*j
			if l >= 16 {
				s++
			}
			sc := blk[s]
			y[e] = float32(h16(80)*float32(sc&0xf)*float32(q)) - h16(82)*float32(sc>>4)
		case Q3_K:
			h, r := e/128, e%128
			j, l := r/32, r%32
			s := 8*h + 2*j
			if l >= 16 {
				s++
			}
			scales := blk[96:108]
			var low4 byte
			if s < 8 {
				low4 = scales[s] & 0xf
			} else {
				low4 = scales[s-8] >> 4
			}
			high2 := scales[8+s%4] >> (2 * (s / 4)) & 3
			sc := int32(low4|high2<<4) - 32
			q := int32(blk[32+32*h+l]>>(2*j)) & 3
			if blk[l]>>(4*h+j)&1 == 0 {
				q -= 4
			}
			y[e] = h16(108) * float32(sc) * float32(q)
		case Q4_K, Q5_K:
			c, r := e/64, e%64
			hi, l := r/32, r%32
			b := 2*c + hi
			sc, mn := scaleMinK4(blk[4:16], b)
			qsAt := 16
			if typ == Q5_K {
				qsAt = 48
			}
			q := int32(blk[qsAt+32*c+l]>>(4*hi)) & 0xf
			if typ == Q5_K {
				q += 16 * int32(blk[16+l]>>b&1)
			}
			y[e] = float32(h16(0)*float32(sc)*float32(q)) - h16(2)*float32(mn)
		case Q6_K:
			h, r := e/128, e%128
			g, l := r/32, r%32
			low4 := blk[64*h+l+32*(g%2)] >> (4 * (g / 2)) & 0xf
			high2 := blk[128+32*h+l] >> (2 * g) & 3
			q := int32(low4|high2<<4) - 32
			s := 8*h + 2*g
			if l >= 16 {
				s++
			}
			y[e] = h16(208) * float32(int8(blk[192+s])) * float32(q)
		}
	}
	return y
}

// TestDequantRandomBlocks decodes random blocks, including extreme f16
// scale fields (zero, subnormal, the largest finite value, negative) and
// all-zero / all-ones quant bytes, and checks them bit for bit against the
// naive reference and for finiteness.
func TestDequantRandomBlocks(t *testing.T) {
	scales := []uint16{0x0000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xfbff, 0x8001, 0x3555}
	for _, typ := range SupportedTypes[3:] {
		fields := f16Fields[typ]
		rng := rand.New(rand.NewPCG(5, uint64(typ)))
		bb := typ.BlockBytes()
		for trial := range 600 {
			blk := make([]byte, bb)
			switch trial % 3 {
			case 0:
				for k := range blk {
					blk[k] = byte(rng.UintN(256))
				}
			case 1: // all-zero quants
			case 2:
				for k := range blk {
					blk[k] = 0xff
				}
			}
			for _, f := range fields {
				var s uint16
				if trial%5 == 4 {
					s = uint16(rng.UintN(0x7c00)) | uint16(rng.UintN(2))<<15 // any finite
				} else {
					s = scales[rng.IntN(len(scales))]
				}
				binary.LittleEndian.PutUint16(blk[f:], s)
			}
			y := make([]float32, typ.BlockElems())
			require.NoError(t, DequantizeRow(typ, blk, y))
			want := refDequant(typ, blk)
			for i := range y {
				require.False(t, math.IsNaN(float64(y[i])) || math.IsInf(float64(y[i]), 0), "%s trial %d y[%d] = %g", typ, trial, i, y[i])
			}
			requireBitsEqual(t, want, y)
		}
		// An infinite scale gives inf or NaN (inf × 0), as in ggml.
		blk := make([]byte, bb)
		binary.LittleEndian.PutUint16(blk[fields[0]:], 0x7c00)
		y := make([]float32, typ.BlockElems())
		require.NoError(t, DequantizeRow(typ, blk, y))
		requireBitsEqual(t, refDequant(typ, blk), y)
	}
}

// TestQuantizeDequantizeIdempotent: re-quantizing dequantized values is
// close to a fixed point (the values are already on the grid), which checks
// that quantizer and dequantizer agree on every field's meaning.
func TestQuantizeDequantizeIdempotent(t *testing.T) {
	x := testInputs(32 * 256)["gaussian"]
	for _, typ := range SupportedTypes {
		q := make([]byte, must(typ.RowBytes(len(x))))
		require.NoError(t, QuantizeRow(typ, x, q))
		y := make([]float32, len(x))
		require.NoError(t, DequantizeRow(typ, q, y))
		q2 := make([]byte, len(q))
		require.NoError(t, QuantizeRow(typ, y, q2))
		y2 := make([]float32, len(x))
		require.NoError(t, DequantizeRow(typ, q2, y2))
		require.LessOrEqual(t, relRMS(y, y2), quantBounds[typ].gaussian/2+1e-7, "%s", typ)
	}
}
