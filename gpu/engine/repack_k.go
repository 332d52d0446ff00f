package engine

// Repackers of the K-quant super-blocks (256 elements). Each becomes a q
// plane of its quant bits regrouped per 32-element sub-block (see
// shaders/formats.wgsl) and a scales record of 5 words per super-block:
//
//	bytes 0-3:  d, dmin as stored (f16; dmin 0 for Q3_K and Q6_K)
//	bytes 4-19: the 16 per-group bytes, unpacked from the stored packing:
//	  Q2_K        scale | min<<4 of group g (16 elements), as stored
//	  Q3_K        the signed 6-bit scale of group g (−32..31), as int8
//	  Q4_K, Q5_K  6-bit scale and min of sub-block b at bytes 2b, 2b+1
//	  Q6_K        the int8 scale of group g, as stored
//
// so the kernel reads a piece's scale and min from one byte or half word.
// GPU bytes per super-block: Q2_K 84 (file 84), Q3_K 116 (110), Q4_K 148
// (144), Q5_K 180 (176), Q6_K 212 (210).
//
// Element e of a super-block, in the spec's decomposition (gguf.md §5):
//
//	Q2_K, Q3_K, Q6_K: h = e/128, j = (e%128)/32, l = e%32
//	Q4_K, Q5_K:       c = e/64, hi = (e%64)/32, l = e%32
//
// so each sub-block of 32 (h, j) or (c, hi) takes bit fields of 32
// consecutive bytes of the stored quants, l = 0..31: 4 gathers of 8 bytes.

const (
	qkK          = 256
	kScaleRecord = 20 // bytes of a super-block's scales record
)

// repackK runs block(q, blk) over blocks super-blocks of blockBytes bytes;
// block appends the quant words and returns the scales record.
func repackK(src []byte, blocks, blockBytes, qBytes int, block func(q, blk []byte) ([]byte, [kScaleRecord]byte)) (q, s []byte) {
	q, s = make([]byte, 0, qBytes*blocks), make([]byte, 0, kScaleRecord*blocks)
	for b := 0; b < blocks; b++ {
		var rec [kScaleRecord]byte
		q, rec = block(q, src[blockBytes*b:blockBytes*(b+1)])
		s = append(s, rec[:]...)
	}
	return q, s
}

// appendCrumbs appends the 2 crumb words of field (b[l] >> shift) & 3 of
// the 32 bytes b (element l).
func appendCrumbs(q, b []byte, shift uint) []byte {
	for i := 0; i < 32; i += 8 {
		q = appendU16(q, crumbHalf(b[i:], shift))
	}
	return q
}

// appendNibbles appends the 4 nibble words of field (b[l] >> shift) & 0xf
// of the 32 bytes b.
func appendNibbles(q, b []byte, shift uint) []byte {
	for i := 0; i < 32; i += 8 {
		q = appendU32(q, nibWord(b[i:], shift))
	}
	return q
}

// appendBits appends the bit word of bit `shift` of the 32 bytes b.
func appendBits(q, b []byte, shift uint) []byte {
	for i := 0; i < 32; i += 8 {
		q = append(q, bitByte(b[i:], shift))
	}
	return q
}

// repackQ2_K: 84-byte blocks (scales 16, qs 64, d, dmin). Per sub-block
// (h, j): 2 crumb words.
func repackQ2_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 84, 64, func(q, blk []byte) (_ []byte, rec [kScaleRecord]byte) {
		qs := blk[16:80]
		for h := 0; h < 2; h++ {
			for j := uint(0); j < 4; j++ {
				q = appendCrumbs(q, qs[32*h:], 2*j)
			}
		}
		copy(rec[0:4], blk[80:84])
		copy(rec[4:], blk[0:16])
		return q, rec
	})
}

// repackQ3_K: 110-byte blocks (hmask 32, qs 64, scales 12, d). Per
// sub-block (h, j): 2 crumb words of the low bits, 1 bit word of hmask bit
// 4h+j.
func repackQ3_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 110, 96, func(q, blk []byte) (_ []byte, rec [kScaleRecord]byte) {
		hmask, qs, scales := blk[0:32], blk[32:96], blk[96:108]
		for h := 0; h < 2; h++ {
			for j := uint(0); j < 4; j++ {
				q = appendCrumbs(q, qs[32*h:], 2*j)
				q = appendBits(q, hmask, 4*uint(h)+j)
			}
		}
		copy(rec[0:2], blk[108:110])
		for g := 0; g < 16; g++ {
			low4 := scales[g%8] >> (4 * (g / 8)) & 0xf
			high2 := scales[8+g%4] >> (2 * (g / 4)) & 3
			rec[4+g] = byte(int8(low4|high2<<4) - 32)
		}
		return q, rec
	})
}

// k4Scales unpacks the 6-bit scales and mins of a Q4_K/Q5_K block's 12
// packed bytes into (scale, min) byte pairs.
func k4Scales(scales []byte, pairs []byte) {
	for b := 0; b < 8; b++ {
		var sc, mn byte
		if b < 4 {
			sc, mn = scales[b]&63, scales[b+4]&63
		} else {
			sc = scales[b+4]&0xf | scales[b-4]>>6<<4
			mn = scales[b+4]>>4 | scales[b]>>6<<4
		}
		pairs[2*b], pairs[2*b+1] = sc, mn
	}
}

// repackQ4_K: 144-byte blocks (d, dmin, scales 12, qs 128). Per sub-block
// (c, hi): 4 nibble words.
func repackQ4_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 144, 128, func(q, blk []byte) (_ []byte, rec [kScaleRecord]byte) {
		qs := blk[16:144]
		for c := 0; c < 4; c++ {
			for hi := uint(0); hi < 2; hi++ {
				q = appendNibbles(q, qs[32*c:], 4*hi)
			}
		}
		copy(rec[0:4], blk[0:4])
		k4Scales(blk[4:16], rec[4:])
		return q, rec
	})
}

// repackQ5_K: 176-byte blocks (d, dmin, scales 12, qh 32, qs 128). Per
// sub-block b = (c, hi): 4 nibble words, 1 bit word of qh bit b.
func repackQ5_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 176, 160, func(q, blk []byte) (_ []byte, rec [kScaleRecord]byte) {
		qh, qs := blk[16:48], blk[48:176]
		for c := 0; c < 4; c++ {
			for hi := uint(0); hi < 2; hi++ {
				q = appendNibbles(q, qs[32*c:], 4*hi)
				q = appendBits(q, qh, 2*uint(c)+hi)
			}
		}
		copy(rec[0:4], blk[0:4])
		k4Scales(blk[4:16], rec[4:])
		return q, rec
	})
}

// repackQ6_K: 210-byte blocks (ql 128, qh 64, scales 16, d). Per sub-block
// (h, j): 4 nibble words of the low 4 bits (ql[64h + 32(j%2) + l], nibble
// j/2), 2 crumb words of the high 2 bits (qh[32h + l] >> 2j).
func repackQ6_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 210, 192, func(q, blk []byte) (_ []byte, rec [kScaleRecord]byte) {
		ql, qh := blk[0:128], blk[128:192]
		for h := 0; h < 2; h++ {
			for j := uint(0); j < 4; j++ {
				q = appendNibbles(q, ql[64*h+32*int(j%2):], 4*(j/2))
				q = appendCrumbs(q, qh[32*h:], 2*j)
			}
		}
		copy(rec[0:2], blk[208:210])
		copy(rec[4:], blk[192:208])
		return q, rec
	})
}
