package gguf

// Reference quantizers of the K-quant super-blocks.

// asymGroups picks, for each group of an asymmetric format (y = ds·q − dm
// with q in 0..qmax), a sub-scale and a sub-min in 0..smax relative to the
// f16 super-scales d and dmin, which it returns. The group's offset is
// min(0, smallest element), so that dm ≥ 0 as the formats require.
func asymGroups(x []float32, groupSize int, qmax, smax int32, sc, mn []int32) (d, dmin float32) {
	var scales, mins [16]float32
	var maxS, maxM float32
	for g := range sc {
		lo, hi := minMax(x[g*groupSize : (g+1)*groupSize])
		lo = min(lo, 0)
		scales[g] = (hi - lo) / float32(qmax)
		mins[g] = -lo
		maxS, maxM = max(maxS, scales[g]), max(maxM, mins[g])
	}
	d = f16Scale(maxS / float32(smax))
	dmin = f16Scale(maxM / float32(smax))
	id, idm := recip(d), recip(dmin)
	for g := range sc {
		sc[g] = clampRound(scales[g]*id, 0, smax)
		mn[g] = clampRound(mins[g]*idm, 0, smax)
	}
	return d, dmin
}

// asymQuant quantizes one group against its effective scale and min.
func asymQuant(x []float32, d, dmin float32, sc, mn, qmax int32, q []int32) {
	ds, dm := d*float32(sc), dmin*float32(mn)
	ids := recip(ds)
	for i, v := range x {
		q[i] = clampRound((v+dm)*ids, 0, qmax)
	}
}

// symGroups picks, for each group of a symmetric format (y = d·sc·q with q
// in −qneg..qneg−1), a signed sub-scale in −sneg..sneg−1 relative to the f16
// super-scale d, which it returns. The element of largest magnitude of a
// group maps to q = −qneg, and the largest sub-scale to −sneg.
func symGroups(x []float32, groupSize int, qneg, sneg int32, sc []int32) (d float32) {
	var scales [16]float32
	for g := range sc {
		scales[g] = signedAbsMax(x[g*groupSize:(g+1)*groupSize]) / -float32(qneg)
	}
	d = f16Scale(signedAbsMax(scales[:len(sc)]) / -float32(sneg))
	id := recip(d)
	for g := range sc {
		sc[g] = clampRound(scales[g]*id, -sneg, sneg-1)
	}
	return d
}

// symQuant quantizes one group against its effective scale.
func symQuant(x []float32, d float32, sc, qneg int32, q []int32) {
	ids := recip(d * float32(sc))
	for i, v := range x {
		q[i] = clampRound(v*ids, -qneg, qneg-1)
	}
}

func quantQ2_K(src []float32, dst []byte) {
	var sc, mn [16]int32
	var q [qkK]int32
	for b := 0; b < len(src)/qkK; b++ {
		x := src[qkK*b : qkK*b+qkK]
		blk := dst[84*b : 84*b+84]
		clear(blk)
		d, dmin := asymGroups(x, 16, 3, 15, sc[:], mn[:])
		for g := 0; g < 16; g++ {
			asymQuant(x[16*g:16*g+16], d, dmin, sc[g], mn[g], 3, q[16*g:])
		}
		// Group s covers elements 16·s .. 16·s+15, which is the spec's
		// s = 8h + 2j + (l ≥ 16) for e = 128h + 32j + l.
		for s := 0; s < 16; s++ {
			blk[s] = byte(sc[s] | mn[s]<<4)
		}
		for e := 0; e < qkK; e++ {
			h, j, l := e/128, e%128/32, e%32
			blk[16+32*h+l] |= byte(q[e] << (2 * j))
		}
		putF16(blk[80:], d)
		putF16(blk[82:], dmin)
	}
}

func quantQ3_K(src []float32, dst []byte) {
	var sc [16]int32
	var q [qkK]int32
	for b := 0; b < len(src)/qkK; b++ {
		x := src[qkK*b : qkK*b+qkK]
		blk := dst[110*b : 110*b+110]
		clear(blk)
		d := symGroups(x, 16, 4, 32, sc[:])
		for g := 0; g < 16; g++ {
			symQuant(x[16*g:16*g+16], d, sc[g], 4, q[16*g:])
		}
		hmask, qs, scales := blk[0:32], blk[32:96], blk[96:108]
		for e := 0; e < qkK; e++ {
			h, j, l := e/128, e%128/32, e%32
			u := q[e] + 4 // 0..7
			qs[32*h+l] |= byte(u&3) << (2 * j)
			hmask[l] |= byte(u>>2) << (4*h + j)
		}
		for s := 0; s < 16; s++ {
			u := byte(sc[s] + 32) // 0..63
			if s < 8 {
				scales[s] |= u & 0xf
			} else {
				scales[s-8] |= (u & 0xf) << 4
			}
			scales[8+s%4] |= (u >> 4) << (2 * (s / 4))
		}
		putF16(blk[108:], d)
	}
}

// putScaleMinK4 packs eight 6-bit scales and mins the way scaleMinK4 reads
// them.
func putScaleMinK4(scales []byte, sc, mn *[16]int32) {
	for i := 0; i < 4; i++ {
		scales[i] = byte(sc[i]) | byte(sc[i+4]>>4)<<6
		scales[i+4] = byte(mn[i]) | byte(mn[i+4]>>4)<<6
		scales[i+8] = byte(sc[i+4]&0xf) | byte(mn[i+4]&0xf)<<4
	}
}

// quantK45 encodes Q4_K (qmax 15) or Q5_K (qmax 31) super-blocks.
func quantK45(src []float32, dst []byte, blockBytes int, qmax int32) {
	var sc, mn [16]int32
	var q [qkK]int32
	for b := 0; b < len(src)/qkK; b++ {
		x := src[qkK*b : qkK*b+qkK]
		blk := dst[blockBytes*b : blockBytes*(b+1)]
		clear(blk)
		d, dmin := asymGroups(x, 32, qmax, 63, sc[:8], mn[:8])
		for g := 0; g < 8; g++ {
			asymQuant(x[32*g:32*g+32], d, dmin, sc[g], mn[g], qmax, q[32*g:])
		}
		putF16(blk[0:], d)
		putF16(blk[2:], dmin)
		putScaleMinK4(blk[4:16], &sc, &mn)
		qs := blk[16:]
		if qmax == 31 {
			qh := blk[16:48]
			qs = blk[48:]
			for e := 0; e < qkK; e++ {
				qh[e%32] |= byte(q[e]>>4) << (e / 32)
			}
		}
		// Element e = 64c + 32hi + l is nibble hi of qs[32c + l].
		for e := 0; e < qkK; e++ {
			c, hi, l := e/64, e%64/32, e%32
			qs[32*c+l] |= byte(q[e]&0xf) << (4 * hi)
		}
	}
}

func quantQ4_K(src []float32, dst []byte) { quantK45(src, dst, 144, 15) }

func quantQ5_K(src []float32, dst []byte) { quantK45(src, dst, 176, 31) }

func quantQ6_K(src []float32, dst []byte) {
	var sc [16]int32
	var q [qkK]int32
	for b := 0; b < len(src)/qkK; b++ {
		x := src[qkK*b : qkK*b+qkK]
		blk := dst[210*b : 210*b+210]
		clear(blk)
		d := symGroups(x, 16, 32, 128, sc[:])
		for g := 0; g < 16; g++ {
			symQuant(x[16*g:16*g+16], d, sc[g], 32, q[16*g:])
		}
		ql, qh, scales := blk[0:128], blk[128:192], blk[192:208]
		for e := 0; e < qkK; e++ {
			h, g, l := e/128, e%128/32, e%32
			u := byte(q[e] + 32) // 0..63
			ql[64*h+l+32*(g%2)] |= (u & 0xf) << (4 * (g / 2))
			qh[32*h+l] |= (u >> 4) << (2 * g)
		}
		for s := 0; s < 16; s++ {
			scales[s] = byte(int8(sc[s]))
		}
		putF16(blk[208:], d)
	}
}
