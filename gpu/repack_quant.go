package gpu

// Repackers of the 32-element block formats Q4_0, Q4_1, Q5_0 and Q5_1, and
// the bit-plane packers shared with the K-quants (repack_k.go). The planes
// are described in shaders/formats.wgsl: quant bits are regrouped so that 8
// consecutive weights sit in one word (nibbles), one half word (2-bit
// crumbs) or one byte (single bits), in element order; the scales keep their
// stored f16 bits. Every format takes the same bytes as in the file, except
// the K-quants' unpacked scale records (repack_k.go).

// packNibbles appends v (values 0..15, len a multiple of 8) as a nibble
// plane: 8 elements per little-endian word, element j of a word in bits 4j.
func packNibbles(dst []byte, v []uint8) []byte {
	for i := 0; i < len(v); i += 2 {
		dst = append(dst, v[i]&0xf|v[i+1]<<4)
	}
	return dst
}

// packCrumbs appends v (values 0..3, len a multiple of 16) as a crumb plane:
// 16 elements per word, element j of a word in bits 2j.
func packCrumbs(dst []byte, v []uint8) []byte {
	for i := 0; i < len(v); i += 4 {
		dst = append(dst, v[i]&3|(v[i+1]&3)<<2|(v[i+2]&3)<<4|v[i+3]<<6)
	}
	return dst
}

// packBits appends bit 0 of each v (len a multiple of 32) as a bit plane: 32
// elements per word, element j of a word in bit j.
func packBits(dst []byte, v []uint8) []byte {
	for i := 0; i < len(v); i += 8 {
		var b uint8
		for j := 0; j < 8; j++ {
			b |= (v[i+j] & 1) << j
		}
		dst = append(dst, b)
	}
	return dst
}

// q4Nibbles returns the 32 low-4-bit quants of a block's 16 qs bytes in
// element order (element j: low nibble of qs[j]; j+16: high nibble).
func q4Nibbles(qs []byte, v *[32]uint8) []uint8 {
	for j := 0; j < 16; j++ {
		v[j] = qs[j] & 0xf
		v[j+16] = qs[j] >> 4
	}
	return v[:]
}

// repackQ4_0: 18-byte blocks (f16 d, 16 qs) into a nibble plane (16 bytes a
// block) and an f16 plane of d.
func repackQ4_0(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 16*blocks), make([]byte, 0, 2*blocks)
	var v [32]uint8
	for b := 0; b < blocks; b++ {
		blk := src[18*b : 18*b+18]
		s = append(s, blk[0:2]...)
		q = packNibbles(q, q4Nibbles(blk[2:18], &v))
	}
	return q, s
}

// repackQ4_1: 20-byte blocks (f16 d, f16 m, 16 qs) into a nibble plane and a
// plane of (d, m) words.
func repackQ4_1(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 16*blocks), make([]byte, 0, 4*blocks)
	var v [32]uint8
	for b := 0; b < blocks; b++ {
		blk := src[20*b : 20*b+20]
		s = append(s, blk[0:4]...)
		q = packNibbles(q, q4Nibbles(blk[4:20], &v))
	}
	return q, s
}

// repackQ5: the q plane of Q5_0 and Q5_1, 5 words per block: the nibble
// words of the low 4 bits, then the stored qh word (bit j = element j's
// fifth bit, already in element order).
func repackQ5(q []byte, qh, qs []byte, v *[32]uint8) []byte {
	q = packNibbles(q, q4Nibbles(qs, v))
	return append(q, qh[:4]...)
}

// repackQ5_0: 22-byte blocks (f16 d, qh u32, 16 qs) into the Q5 plane (20
// bytes a block) and an f16 plane of d.
func repackQ5_0(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 20*blocks), make([]byte, 0, 2*blocks)
	var v [32]uint8
	for b := 0; b < blocks; b++ {
		blk := src[22*b : 22*b+22]
		s = append(s, blk[0:2]...)
		q = repackQ5(q, blk[2:6], blk[6:22], &v)
	}
	return q, s
}

// repackQ5_1: 24-byte blocks (f16 d, f16 m, qh u32, 16 qs) into the Q5
// plane and a plane of (d, m) words.
func repackQ5_1(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 20*blocks), make([]byte, 0, 4*blocks)
	var v [32]uint8
	for b := 0; b < blocks; b++ {
		blk := src[24*b : 24*b+24]
		s = append(s, blk[0:4]...)
		q = repackQ5(q, blk[4:8], blk[8:24], &v)
	}
	return q, s
}
