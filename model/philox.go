package model

// The sampler's random numbers come from Philox4x32-10 (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the Random123
// library), a counter-based generator: the output for a counter is a pure
// function of (key, counter), so every sequence, row and step can compute
// its own number without shared state, and the GPU (shaders/philox.wgsl,
// u32 arithmetic only) produces the same bits as this code.

// Philox constants: the round multipliers and the Weyl key increments.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// mulHiLo returns the high and low 32 bits of the 64-bit product a·b.
func mulHiLo(a, b uint32) (hi, lo uint32) {
	p := uint64(a) * uint64(b)
	return uint32(p >> 32), uint32(p)
}

// Philox4x32 is Philox4x32-10: ten rounds over the counter ctr with the key
// key (the key is bumped by the Weyl constants between rounds).
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	for round := 0; round < 10; round++ {
		if round > 0 {
			key[0] += philoxW0
			key[1] += philoxW1
		}
		hi0, lo0 := mulHiLo(philoxM0, ctr[0])
		hi1, lo1 := mulHiLo(philoxM1, ctr[2])
		ctr = [4]uint32{hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0}
	}
	return ctr
}

// SampleUniform is the uniform number in [0, 1) that a sampler seeded with
// seed uses for its counter-th token: the first word of
// Philox4x32-10(counter (counter, 0, 0, 0), key (seed mod 2³², seed >> 32)),
// its top 24 bits scaled by 2⁻²⁴ (exact in float32).
func SampleUniform(seed uint64, counter uint32) float32 {
	out := Philox4x32([4]uint32{counter, 0, 0, 0}, [2]uint32{uint32(seed), uint32(seed >> 32)})
	return float32(out[0]>>8) * (1.0 / (1 << 24))
}
