package synth

import (
	"math"
	"sync"
)

// Pseudo-random numbers: SplitMix64 streams, one per tensor row, seeded from
// (seed, tensor name, row) so that any row can be generated independently.

const golden64 = 0x9E3779B97F4A7C15

// mix64 is the SplitMix64 finalizer, a bijective 64-bit hash.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// tensorSeed hashes the file seed and a tensor name (FNV-1a, then mixed).
func tensorSeed(seed uint64, name string) uint64 {
	h := uint64(0xCBF29CE484222325)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 0x100000001B3
	}
	return mix64(mix64(seed+golden64) ^ h)
}

// stream is a SplitMix64 generator.
type stream struct{ s uint64 }

// rowStream returns the generator of row r of the tensor with seed ts.
func rowStream(ts uint64, r int) stream {
	return stream{mix64(ts ^ mix64(uint64(r)+golden64))}
}

func (g *stream) next() uint64 {
	g.s += golden64
	return mix64(g.s)
}

// gaussTable[i] is the standard normal quantile of (i+0.5)/65536: indexing
// it with 16 uniform random bits draws a standard normal value (tails cut at
// ±4.33σ), four per 64-bit draw.
var gaussTable = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		p := (float64(i) + 0.5) / (1 << 16)
		t[i] = float32(math.Sqrt2 * math.Erfinv(2*p-1))
	}
	return &t
})

// normals fills dst with independent standard normal values.
func (g *stream) normals(dst []float32) {
	t := gaussTable()
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		u := g.next()
		dst[i] = t[uint16(u)]
		dst[i+1] = t[uint16(u>>16)]
		dst[i+2] = t[uint16(u>>32)]
		dst[i+3] = t[uint16(u>>48)]
	}
	if i < len(dst) {
		u := g.next()
		for ; i < len(dst); i++ {
			dst[i] = t[uint16(u)]
			u >>= 16
		}
	}
}
