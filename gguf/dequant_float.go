package gguf

import (
	"encoding/binary"
	"math"
)

// F16ToF32 converts an IEEE binary16 value to float32 exactly, including
// subnormals, infinities and NaNs (the payload is kept), using integer
// arithmetic only.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = mant * 2^-24. Normalise the mantissa.
	e := uint32(113) // biased float32 exponent of 2^-14
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 converts a float32 to IEEE binary16, rounding to nearest with
// ties to even. Values too large become ±inf, values too small ±0 or a
// subnormal; a NaN stays a (quiet) NaN with the same sign.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 112 // biased binary16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Result is subnormal (or zero): count units of 2^-24.
		// value = m * 2^(exp-150) = m * 2^-24 * 2^-(126-exp).
		if exp == 0 {
			return sign // float32 zeros and subnormals are far below 2^-25
		}
		m := mant | 0x800000
		shift := uint32(126 - exp) // >= 14
		if shift > 24 {
			return sign // below half the smallest subnormal
		}
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++ // may carry into the smallest normal, which encodes correctly
		}
		return sign | uint16(q)
	}
	q := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // a carry into the exponent is correct, up to +inf
	}
	return sign | uint16(q)
}

// BF16ToF32 converts a bfloat16 to float32 (exact: the bits are the top
// half of the float32).
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 converts a float32 to bfloat16, rounding to nearest with ties to
// even; a NaN becomes a quiet NaN with the same sign.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

func dequantF32(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func dequantBF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func quantF32(src []float32, dst []byte) {
	for i, x := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
	}
}

func quantF16(src []float32, dst []byte) {
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(x))
	}
}

func quantBF16(src []float32, dst []byte) {
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(x))
	}
}

// f16 reads a little-endian binary16 at b[0:2] as float32.
func f16(b []byte) float32 {
	return F16ToF32(uint16(b[0]) | uint16(b[1])<<8)
}

// putF16 stores x as a little-endian binary16 at b[0:2].
func putF16(b []byte, x float32) {
	binary.LittleEndian.PutUint16(b, F32ToF16(x))
}
