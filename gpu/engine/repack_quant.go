package engine

import "encoding/binary"

// Repackers of the 32-element block formats Q4_0, Q4_1, Q5_0 and Q5_1, and
// the bit-plane helpers shared with the K-quants (repack_k.go). The planes
// are described in shaders/formats.wgsl: quant bits are regrouped so that 8
// consecutive weights sit in one word (nibbles), one half word (2-bit
// crumbs) or one byte (single bits), in element order; the scales keep their
// stored f16 bits. Every format takes the same bytes as in the file, except
// the K-quants' unpacked scale records (repack_k.go).

// nibWord gathers field (b[j] >> shift) & 0xf of the 8 bytes b[0..8) into
// one nibble-plane word (field j in bits 4j).
func nibWord(b []byte, shift uint) uint32 {
	x := binary.LittleEndian.Uint64(b) >> shift & 0x0f0f0f0f0f0f0f0f
	x = (x | x>>4) & 0x00ff00ff00ff00ff
	x = (x | x>>8) & 0x0000ffff0000ffff
	return uint32(x | x>>16)
}

// crumbHalf gathers field (b[j] >> shift) & 3 of the 8 bytes b[0..8) into
// one half of a crumb-plane word (field j in bits 2j).
func crumbHalf(b []byte, shift uint) uint16 {
	x := binary.LittleEndian.Uint64(b) >> shift & 0x0303030303030303
	x = (x | x>>6) & 0x000f000f000f000f
	x = (x | x>>12) & 0x000000ff000000ff
	return uint16(x | x>>24)
}

// bitByte gathers bit `shift` of the 8 bytes b[0..8) into one byte of a
// bit-plane word (bit j from b[j]): the multiplication moves bit 8j of x to
// bit 56+j, with no carries (every partial product lands on its own bit).
func bitByte(b []byte, shift uint) byte {
	x := binary.LittleEndian.Uint64(b) >> shift & 0x0101010101010101
	return byte(x * 0x0102040810204080 >> 56)
}

func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func appendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }

// appendQ4 appends the 4 nibble words of a block's 16 qs bytes: element j
// (0..15) is the low nibble of qs[j], element j+16 its high nibble.
func appendQ4(q []byte, qs []byte) []byte {
	q = appendU32(q, nibWord(qs[0:8], 0))
	q = appendU32(q, nibWord(qs[8:16], 0))
	q = appendU32(q, nibWord(qs[0:8], 4))
	return appendU32(q, nibWord(qs[8:16], 4))
}

// repackQ4_0: 18-byte blocks (f16 d, 16 qs) into a nibble plane (16 bytes a
// block) and an f16 plane of d.
func repackQ4_0(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 16*blocks), make([]byte, 0, 2*blocks)
	for b := 0; b < blocks; b++ {
		blk := src[18*b : 18*b+18]
		s = append(s, blk[0:2]...)
		q = appendQ4(q, blk[2:18])
	}
	return q, s
}

// repackQ4_1: 20-byte blocks (f16 d, f16 m, 16 qs) into a nibble plane and a
// plane of (d, m) words.
func repackQ4_1(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 16*blocks), make([]byte, 0, 4*blocks)
	for b := 0; b < blocks; b++ {
		blk := src[20*b : 20*b+20]
		s = append(s, blk[0:4]...)
		q = appendQ4(q, blk[4:20])
	}
	return q, s
}

// appendQ5 appends the q plane words of a Q5_0/Q5_1 block, 5 words: the
// nibble words of the low 4 bits, then the stored qh word (bit j = element
// j's fifth bit, already in element order).
func appendQ5(q []byte, qh, qs []byte) []byte {
	return append(appendQ4(q, qs), qh[:4]...)
}

// repackQ5_0: 22-byte blocks (f16 d, qh u32, 16 qs) into the Q5 plane (20
// bytes a block) and an f16 plane of d.
func repackQ5_0(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 20*blocks), make([]byte, 0, 2*blocks)
	for b := 0; b < blocks; b++ {
		blk := src[22*b : 22*b+22]
		s = append(s, blk[0:2]...)
		q = appendQ5(q, blk[2:6], blk[6:22])
	}
	return q, s
}

// repackQ5_1: 24-byte blocks (f16 d, f16 m, qh u32, 16 qs) into the Q5
// plane and a plane of (d, m) words.
func repackQ5_1(src []byte, blocks int) (q, s []byte) {
	q, s = make([]byte, 0, 20*blocks), make([]byte, 0, 4*blocks)
	for b := 0; b < blocks; b++ {
		blk := src[24*b : 24*b+24]
		s = append(s, blk[0:4]...)
		q = appendQ5(q, blk[4:8], blk[8:24])
	}
	return q, s
}
