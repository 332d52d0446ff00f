package gguf

import "encoding/binary"

// Dequantizers of the 32-element block formats (spec §5). Every product of
// a quant and an f16 scale is exact in float32; the explicit float32
// conversions keep the compiler from fusing the product with the following
// addition, so that the result is the correctly rounded sum ggml computes.

func dequantQ4_0(src []byte, dst []float32) {
	for b := 0; b < len(dst)/32; b++ {
		blk := src[18*b : 18*b+18]
		y := dst[32*b : 32*b+32]
		d := f16(blk)
		qs := blk[2:18]
		for j := 0; j < 16; j++ {
			y[j] = float32(int32(qs[j]&0xf)-8) * d
			y[j+16] = float32(int32(qs[j]>>4)-8) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	for b := 0; b < len(dst)/32; b++ {
		blk := src[20*b : 20*b+20]
		y := dst[32*b : 32*b+32]
		d, m := f16(blk), f16(blk[2:])
		qs := blk[4:20]
		for j := 0; j < 16; j++ {
			y[j] = float32(float32(qs[j]&0xf)*d) + m
			y[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}

func dequantQ5_0(src []byte, dst []float32) {
	for b := 0; b < len(dst)/32; b++ {
		blk := src[22*b : 22*b+22]
		y := dst[32*b : 32*b+32]
		d := f16(blk)
		qh := binary.LittleEndian.Uint32(blk[2:])
		qs := blk[6:22]
		for j := 0; j < 16; j++ {
			lo := int32(qs[j]&0xf) | int32(qh>>j&1)<<4
			hi := int32(qs[j]>>4) | int32(qh>>(j+16)&1)<<4
			y[j] = float32(lo-16) * d
			y[j+16] = float32(hi-16) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	for b := 0; b < len(dst)/32; b++ {
		blk := src[24*b : 24*b+24]
		y := dst[32*b : 32*b+32]
		d, m := f16(blk), f16(blk[2:])
		qh := binary.LittleEndian.Uint32(blk[4:])
		qs := blk[8:24]
		for j := 0; j < 16; j++ {
			lo := uint32(qs[j]&0xf) | (qh>>j&1)<<4
			hi := uint32(qs[j]>>4) | (qh>>(j+16)&1)<<4
			y[j] = float32(float32(lo)*d) + m
			y[j+16] = float32(float32(hi)*d) + m
		}
	}
}

func dequantQ8_0(src []byte, dst []float32) {
	for b := 0; b < len(dst)/32; b++ {
		blk := src[34*b : 34*b+34]
		y := dst[32*b : 32*b+32]
		d := f16(blk)
		for j, q := range blk[2:34] {
			y[j] = float32(int8(q)) * d
		}
	}
}
