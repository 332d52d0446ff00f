package gguf

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func isNaN16(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

// TestF16Exhaustive checks every binary16 value: F16ToF32 agrees with an
// independent float64 formula, and F32ToF16 gives the same bits back (NaNs
// stay NaN with the same sign; their payload gets the quiet bit).
func TestF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		exp, mant := int(h>>10&0x1f), float64(h&0x3ff)
		switch {
		case exp == 0x1f && mant == 0:
			require.True(t, math.IsInf(float64(f), int(sign)), "%04x", h)
		case exp == 0x1f:
			require.True(t, math.IsNaN(float64(f)), "%04x", h)
		case exp == 0:
			require.Equal(t, sign*mant*math.Pow(2, -24), float64(f), "%04x", h)
			require.Equal(t, h&0x8000 != 0, math.Signbit(float64(f)), "%04x sign of zero", h)
		default:
			require.Equal(t, sign*(1+mant/1024)*math.Pow(2, float64(exp-15)), float64(f), "%04x", h)
		}
		back := F32ToF16(f)
		if isNaN16(h) {
			require.True(t, isNaN16(back), "%04x -> %04x", h, back)
			require.Equal(t, h&0x8000, back&0x8000)
			require.Equal(t, h|0x200, back, "NaN payload kept, quiet bit set")
		} else {
			require.Equal(t, h, back, "%04x", h)
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65519.996, 0x7bff},            // just below the midpoint to inf
		{65520, 0x7c00},                // midpoint: ties to even = inf
		{1e10, 0x7c00},                 // overflow
		{-1e10, 0xfc00},                // overflow
		{float32(math.Inf(1)), 0x7c00}, // inf
		{1 + 1.0/2048, 0x3c00},         // tie between 1 and 1+2^-10: even is 1
		{1 + 3.0/2048, 0x3c02},         // tie between 1+2^-10 and 1+2^-9: even is the latter
		{1 + 1.0/2048 + 1.0/(1<<20), 0x3c01},
		{float32(math.Ldexp(1, -24)), 0x0001},      // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},      // half of it: tie to even 0
		{float32(math.Ldexp(1.5, -25)), 0x0001},    // above the tie
		{float32(math.Ldexp(3, -25)), 0x0002},      // 1.5 units: tie to even 2
		{float32(math.Ldexp(5, -25)), 0x0002},      // 2.5 units: tie to even 2
		{float32(math.Ldexp(1, -14)), 0x0400},      // smallest normal
		{float32(math.Ldexp(1023.5, -24)), 0x0400}, // subnormal rounding up into the smallest normal
		{float32(math.Ldexp(1, -26)), 0x0000},      // underflow
		{-float32(math.Ldexp(1, -26)), 0x8000},     // negative underflow keeps the sign
		{math.Float32frombits(1), 0x0000},          // float32 subnormal
		{math.Float32frombits(0x80000000), 0x8000}, // -0
		{math.Float32frombits(0x7fc00000), 0x7e00}, // quiet NaN
		{math.Float32frombits(0xff800001), 0xfe00}, // signalling NaN with low payload
		{math.Float32frombits(0x7f802000), 0x7e01}, // payload kept
		{2049, 0x6800},                             // tie between 2048 and 2050: even is 2048
		{2051, 0x6802},                             // tie between 2050 and 2052: even is 2052
	}
	for _, c := range cases {
		require.Equal(t, c.want, F32ToF16(c.in), "%g (0x%08x)", c.in, math.Float32bits(c.in))
	}
}

// TestF32ToF16Midpoints checks round-to-nearest-even at and around every
// midpoint between consecutive finite halves.
func TestF32ToF16Midpoints(t *testing.T) {
	for h := uint16(0); h < 0x7bff; h++ {
		lo, hi := float64(F16ToF32(h)), float64(F16ToF32(h+1))
		mid := float32((lo + hi) / 2) // exact in float32
		require.Equal(t, (lo+hi)/2, float64(mid))
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		require.Equal(t, even, F32ToF16(mid), "midpoint of %04x", h)
		require.Equal(t, h, F32ToF16(math.Nextafter32(mid, 0)), "below midpoint of %04x", h)
		require.Equal(t, h+1, F32ToF16(math.Nextafter32(mid, 1e9)), "above midpoint of %04x", h)
		require.Equal(t, even|0x8000, F32ToF16(-mid), "negative midpoint of %04x", h)
	}
}

func TestBF16(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16ToF32(h)
		require.Equal(t, uint32(h)<<16, math.Float32bits(f))
		back := F32ToBF16(f)
		if math.IsNaN(float64(f)) {
			require.Equal(t, h|0x40, back, "%04x", h)
		} else {
			require.Equal(t, h, back, "%04x", h)
		}
	}
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x3f807fff, 0x3f80}, // below the tie
		{0x7f7fffff, 0x7f80}, // max float rounds to inf
		{0xff7fffff, 0xff80},
		{0x7f800001, 0x7fc0}, // signalling NaN becomes quiet
		{0xffc00000, 0xffc0},
		{0x00000001, 0x0000},
	}
	for _, c := range cases {
		require.Equal(t, c.want, F32ToBF16(math.Float32frombits(c.in)), "0x%08x", c.in)
	}
}
