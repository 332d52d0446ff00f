package gguf

// Dequantizers of the 256-element K-quant super-blocks (spec §5). The
// element index inside a super-block is decomposed as the spec writes it;
// products are exact in float32 and the explicit conversions prevent fused
// multiply-adds, so results match ggml bit for bit.

func dequantQ2_K(src []byte, dst []float32) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk := src[84*b : 84*b+84]
		y := dst[qkK*b : qkK*b+qkK]
		scales, qs := blk[0:16], blk[16:80]
		d, dmin := f16(blk[80:]), f16(blk[82:])
		for h := 0; h < 2; h++ {
			for j := 0; j < 4; j++ {
				for half := 0; half < 2; half++ {
					sc := scales[8*h+2*j+half]
					dl := d * float32(sc&0xf)
					ml := dmin * float32(sc>>4)
					for l := 16 * half; l < 16*half+16; l++ {
						q := qs[32*h+l] >> (2 * j) & 3
						y[128*h+32*j+l] = float32(dl*float32(q)) - ml
					}
				}
			}
		}
	}
}

// q3kScale returns the signed 6-bit scale of group s (0..15) of a Q3_K block.
func q3kScale(scales []byte, s int) int32 {
	var low4 byte
	if s < 8 {
		low4 = scales[s] & 0xf
	} else {
		low4 = scales[s-8] >> 4
	}
	high2 := scales[8+s%4] >> (2 * (s / 4)) & 3
	return int32(low4|high2<<4) - 32
}

func dequantQ3_K(src []byte, dst []float32) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk := src[110*b : 110*b+110]
		y := dst[qkK*b : qkK*b+qkK]
		hmask, qs, scales := blk[0:32], blk[32:96], blk[96:108]
		d := f16(blk[108:])
		for h := 0; h < 2; h++ {
			for j := 0; j < 4; j++ {
				bit := uint(4*h + j)
				for half := 0; half < 2; half++ {
					dl := d * float32(q3kScale(scales, 8*h+2*j+half))
					for l := 16 * half; l < 16*half+16; l++ {
						q := int32(qs[32*h+l]>>(2*j)) & 3
						if hmask[l]>>bit&1 == 0 {
							q -= 4
						}
						y[128*h+32*j+l] = dl * float32(q)
					}
				}
			}
		}
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block b (0..7) from the
// 12 packed bytes of a Q4_K or Q5_K block.
func scaleMinK4(scales []byte, b int) (sc, mn byte) {
	if b < 4 {
		return scales[b] & 63, scales[b+4] & 63
	}
	sc = scales[b+4]&0xf | (scales[b-4]>>6)<<4
	mn = scales[b+4]>>4 | (scales[b]>>6)<<4
	return sc, mn
}

func dequantQ4_K(src []byte, dst []float32) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk := src[144*b : 144*b+144]
		y := dst[qkK*b : qkK*b+qkK]
		d, dmin := f16(blk[0:]), f16(blk[2:])
		scales, qs := blk[4:16], blk[16:144]
		for c := 0; c < 4; c++ {
			for hi := 0; hi < 2; hi++ {
				sc, mn := scaleMinK4(scales, 2*c+hi)
				dl := d * float32(sc)
				ml := dmin * float32(mn)
				shift := uint(4 * hi)
				for l := 0; l < 32; l++ {
					q := qs[32*c+l] >> shift & 0xf
					y[64*c+32*hi+l] = float32(dl*float32(q)) - ml
				}
			}
		}
	}
}

func dequantQ5_K(src []byte, dst []float32) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk := src[176*b : 176*b+176]
		y := dst[qkK*b : qkK*b+qkK]
		d, dmin := f16(blk[0:]), f16(blk[2:])
		scales, qh, qs := blk[4:16], blk[16:48], blk[48:176]
		for c := 0; c < 4; c++ {
			for hi := 0; hi < 2; hi++ {
				sb := 2*c + hi
				sc, mn := scaleMinK4(scales, sb)
				dl := d * float32(sc)
				ml := dmin * float32(mn)
				shift := uint(4 * hi)
				for l := 0; l < 32; l++ {
					q := qs[32*c+l]>>shift&0xf | (qh[l]>>sb&1)<<4
					y[64*c+32*hi+l] = float32(dl*float32(q)) - ml
				}
			}
		}
	}
}

func dequantQ6_K(src []byte, dst []float32) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk := src[210*b : 210*b+210]
		y := dst[qkK*b : qkK*b+qkK]
		ql, qh, scales := blk[0:128], blk[128:192], blk[192:208]
		d := f16(blk[208:])
		for h := 0; h < 2; h++ {
			for g := 0; g < 4; g++ {
				lowShift := uint(4 * (g / 2))
				for half := 0; half < 2; half++ {
					dl := d * float32(int8(scales[8*h+2*g+half]))
					for l := 16 * half; l < 16*half+16; l++ {
						low4 := ql[64*h+l+32*(g%2)] >> lowShift & 0xf
						high2 := qh[32*h+l] >> (2 * g) & 3
						q := int32(low4|high2<<4) - 32
						y[128*h+32*g+l] = dl * float32(q)
					}
				}
			}
		}
	}
}
