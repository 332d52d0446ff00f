package gpu

// Repackers of the K-quant super-blocks (256 elements). Each becomes a q
// plane of its quant bits regrouped per 32 elements (see
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

const (
	qkK          = 256
	kScaleRecord = 20 // bytes of a super-block's scales record
)

// kQuants holds one super-block's quants in element order, split as the
// planes store them: lo the low bits, hi the high bits (unused for Q2_K and
// Q4_K).
type kQuants struct {
	lo, hi [qkK]uint8
}

// repackK builds the planes of blocks super-blocks of size blockBytes:
// decode fills the quants and the 16 group bytes of a block and returns its
// d/dmin bytes; pack appends 32 elements' quant words.
func repackK(src []byte, blocks, blockBytes, qBytes int,
	decode func(blk []byte, v *kQuants, groups *[16]byte) (dm [4]byte),
	pack func(q []byte, lo, hi []uint8) []byte) (q, s []byte) {
	q, s = make([]byte, 0, qBytes*blocks), make([]byte, 0, kScaleRecord*blocks)
	var v kQuants
	var g [16]byte
	for b := 0; b < blocks; b++ {
		dm := decode(src[blockBytes*b:blockBytes*(b+1)], &v, &g)
		s = append(append(s, dm[:]...), g[:]...)
		for i := 0; i < qkK; i += 32 {
			q = pack(q, v.lo[i:i+32], v.hi[i:i+32])
		}
	}
	return q, s
}

// Quant-word packings per 32 elements.
func packNib32(q []byte, lo, _ []uint8) []byte   { return packNibbles(q, lo) } // Q4_K: 4 words
func packCrumb32(q []byte, lo, _ []uint8) []byte { return packCrumbs(q, lo) }  // Q2_K: 2 words
func packCrumbBit(q []byte, lo, hi []uint8) []byte { // Q3_K: 3 words
	return packBits(packCrumbs(q, lo), hi)
}
func packNibBit(q []byte, lo, hi []uint8) []byte { // Q5_K: 5 words
	return packBits(packNibbles(q, lo), hi)
}
func packNibCrumb(q []byte, lo, hi []uint8) []byte { // Q6_K: 6 words
	return packCrumbs(packNibbles(q, lo), hi)
}

// Element e of a super-block in the spec's decomposition (gguf.md §5):
// Q2_K/Q3_K/Q6_K: h = e/128, j = (e%128)/32, l = e%32;
// Q4_K/Q5_K:      c = e/64, hi = (e%64)/32, l = e%32.

// repackQ2_K: 84-byte blocks (scales 16, qs 64, d, dmin).
func repackQ2_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 84, 64, func(blk []byte, v *kQuants, g *[16]byte) (dm [4]byte) {
		qs := blk[16:80]
		for e := 0; e < qkK; e++ {
			h, j, l := e/128, e%128/32, e%32
			v.lo[e] = qs[32*h+l] >> (2 * j) & 3
		}
		copy(g[:], blk[0:16])
		copy(dm[:], blk[80:84])
		return dm
	}, packCrumb32)
}

// repackQ3_K: 110-byte blocks (hmask 32, qs 64, scales 12, d).
func repackQ3_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 110, 96, func(blk []byte, v *kQuants, g *[16]byte) (dm [4]byte) {
		hmask, qs, scales := blk[0:32], blk[32:96], blk[96:108]
		for e := 0; e < qkK; e++ {
			h, j, l := e/128, e%128/32, e%32
			v.lo[e] = qs[32*h+l] >> (2 * j) & 3
			v.hi[e] = hmask[l] >> (4*h + j) & 1
		}
		for i := 0; i < 16; i++ {
			low4 := scales[i%8] >> (4 * (i / 8)) & 0xf
			high2 := scales[8+i%4] >> (2 * (i / 4)) & 3
			g[i] = byte(int8(low4|high2<<4) - 32)
		}
		dm[0], dm[1] = blk[108], blk[109]
		return dm
	}, packCrumbBit)
}

// k4Scales unpacks the 6-bit scales and mins of a Q4_K/Q5_K block's 12
// packed bytes into (scale, min) byte pairs.
func k4Scales(scales []byte, g *[16]byte) {
	for b := 0; b < 8; b++ {
		var sc, mn byte
		if b < 4 {
			sc, mn = scales[b]&63, scales[b+4]&63
		} else {
			sc = scales[b+4]&0xf | scales[b-4]>>6<<4
			mn = scales[b+4]>>4 | scales[b]>>6<<4
		}
		g[2*b], g[2*b+1] = sc, mn
	}
}

// repackQ4_K: 144-byte blocks (d, dmin, scales 12, qs 128).
func repackQ4_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 144, 128, func(blk []byte, v *kQuants, g *[16]byte) (dm [4]byte) {
		qs := blk[16:144]
		for e := 0; e < qkK; e++ {
			c, hi, l := e/64, e%64/32, e%32
			v.lo[e] = qs[32*c+l] >> (4 * hi) & 0xf
		}
		k4Scales(blk[4:16], g)
		copy(dm[:], blk[0:4])
		return dm
	}, packNib32)
}

// repackQ5_K: 176-byte blocks (d, dmin, scales 12, qh 32, qs 128).
func repackQ5_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 176, 160, func(blk []byte, v *kQuants, g *[16]byte) (dm [4]byte) {
		qh, qs := blk[16:48], blk[48:176]
		for e := 0; e < qkK; e++ {
			c, hi, l := e/64, e%64/32, e%32
			v.lo[e] = qs[32*c+l] >> (4 * hi) & 0xf
			v.hi[e] = qh[l] >> (e / 32) & 1
		}
		k4Scales(blk[4:16], g)
		copy(dm[:], blk[0:4])
		return dm
	}, packNibBit)
}

// repackQ6_K: 210-byte blocks (ql 128, qh 64, scales 16, d).
func repackQ6_K(src []byte, blocks int) (q, s []byte) {
	return repackK(src, blocks, 210, 192, func(blk []byte, v *kQuants, g *[16]byte) (dm [4]byte) {
		ql, qh := blk[0:128], blk[128:192]
		for e := 0; e < qkK; e++ {
			h, j, l := e/128, e%128/32, e%32
			v.lo[e] = ql[64*h+l+32*(j%2)] >> (4 * (j / 2)) & 0xf
			v.hi[e] = qh[32*h+l] >> (2 * j) & 3
		}
		copy(g[:], blk[192:208])
		dm[0], dm[1] = blk[208], blk[209]
		return dm
	}, packNibCrumb)
}
