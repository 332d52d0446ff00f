package gguf

import (
	"encoding/binary"
	"math"
)

// Reference quantizers: simple, deterministic encoders for every supported
// block format. Scales are chosen from each (sub-)block's range, rounded to
// their storage precision, and the quants are then computed against the
// rounded scales. They are not llama.cpp's encoders and do not match them
// byte for byte.

const maxF16 = 65504

// clampRound rounds x half away from zero and clamps it to [lo, hi]; NaN
// gives lo.
func clampRound(x float32, lo, hi int32) int32 {
	if !(x >= float32(lo)) {
		return lo
	}
	if x >= float32(hi) {
		return hi
	}
	return int32(math.Round(float64(x)))
}

// f16Scale clamps a scale to the finite binary16 range and rounds it to
// binary16, returning the value the dequantizer will see.
func f16Scale(x float32) float32 {
	if x > maxF16 {
		x = maxF16
	} else if x < -maxF16 {
		x = -maxF16
	}
	return F16ToF32(F32ToF16(x))
}

// recip returns 1/d, or 0 when d is 0.
func recip(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// signedAbsMax returns the element of largest magnitude (the first one on
// ties), with its sign.
func signedAbsMax(x []float32) float32 {
	var best, amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, best = a, v
		}
	}
	return best
}

// minMax returns the smallest and largest element.
func minMax(x []float32) (lo, hi float32) {
	lo, hi = x[0], x[0]
	for _, v := range x[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func quantQ8_0(src []float32, dst []byte) {
	for b := 0; b < len(src)/32; b++ {
		x := src[32*b : 32*b+32]
		blk := dst[34*b : 34*b+34]
		d := f16Scale(float32(math.Abs(float64(signedAbsMax(x)))) / 127)
		putF16(blk, d)
		id := recip(d)
		for j, v := range x {
			blk[2+j] = byte(int8(clampRound(v*id, -127, 127)))
		}
	}
}

func quantQ4_0(src []float32, dst []byte) {
	for b := 0; b < len(src)/32; b++ {
		x := src[32*b : 32*b+32]
		blk := dst[18*b : 18*b+18]
		d := f16Scale(signedAbsMax(x) / -8) // the extreme element maps to -8
		putF16(blk, d)
		id := recip(d)
		for j := 0; j < 16; j++ {
			lo := clampRound(x[j]*id+8, 0, 15)
			hi := clampRound(x[j+16]*id+8, 0, 15)
			blk[2+j] = byte(lo | hi<<4)
		}
	}
}

func quantQ4_1(src []float32, dst []byte) {
	for b := 0; b < len(src)/32; b++ {
		x := src[32*b : 32*b+32]
		blk := dst[20*b : 20*b+20]
		lo, hi := minMax(x)
		d, m := f16Scale((hi-lo)/15), f16Scale(lo)
		putF16(blk, d)
		putF16(blk[2:], m)
		id := recip(d)
		for j := 0; j < 16; j++ {
			q0 := clampRound((x[j]-m)*id, 0, 15)
			q1 := clampRound((x[j+16]-m)*id, 0, 15)
			blk[4+j] = byte(q0 | q1<<4)
		}
	}
}

func quantQ5_0(src []float32, dst []byte) {
	for b := 0; b < len(src)/32; b++ {
		x := src[32*b : 32*b+32]
		blk := dst[22*b : 22*b+22]
		d := f16Scale(signedAbsMax(x) / -16)
		putF16(blk, d)
		id := recip(d)
		var qh uint32
		for j := 0; j < 16; j++ {
			q0 := uint32(clampRound(x[j]*id+16, 0, 31))
			q1 := uint32(clampRound(x[j+16]*id+16, 0, 31))
			blk[6+j] = byte(q0&0xf | (q1&0xf)<<4)
			qh |= (q0>>4)<<j | (q1>>4)<<(j+16)
		}
		binary.LittleEndian.PutUint32(blk[2:], qh)
	}
}

func quantQ5_1(src []float32, dst []byte) {
	for b := 0; b < len(src)/32; b++ {
		x := src[32*b : 32*b+32]
		blk := dst[24*b : 24*b+24]
		lo, hi := minMax(x)
		d, m := f16Scale((hi-lo)/31), f16Scale(lo)
		putF16(blk, d)
		putF16(blk[2:], m)
		id := recip(d)
		var qh uint32
		for j := 0; j < 16; j++ {
			q0 := uint32(clampRound((x[j]-m)*id, 0, 31))
			q1 := uint32(clampRound((x[j+16]-m)*id, 0, 31))
			blk[8+j] = byte(q0&0xf | (q1&0xf)<<4)
			qh |= (q0>>4)<<j | (q1>>4)<<(j+16)
		}
		binary.LittleEndian.PutUint32(blk[4:], qh)
	}
}
