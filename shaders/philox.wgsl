// philox.wgsl: the sampler's counter-based random numbers, Philox4x32-10
// (Salmon et al., SC 2011; Random123), in u32 arithmetic only (WGSL has no
// 64-bit integers). Bit for bit the same as model.Philox4x32 and
// model.SampleUniform in Go. Include-only; uses no placeholders.

// mulhilo32 returns (high, low) 32 bits of the 64-bit product a·b, from
// four 16×16-bit partial products.
fn mulhilo32(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let p0 = a_lo * b_lo;
    let p1 = a_lo * b_hi;
    let p2 = a_hi * b_lo;
    let p3 = a_hi * b_hi;
    let mid = (p0 >> 16u) + (p1 & 0xffffu) + (p2 & 0xffffu);
    let hi = p3 + (p1 >> 16u) + (p2 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

// philox4x32_10 is ten Philox rounds over counter ctr with key key (bumped
// by the Weyl constants between rounds).
fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = ctr;
    var k = key;
    for (var round = 0u; round < 10u; round = round + 1u) {
        if (round > 0u) {
            k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let m0 = mulhilo32(0xD2511F53u, c.x);
        let m1 = mulhilo32(0xCD9E8D57u, c.z);
        c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
    }
    return c;
}

// sample_uniform is u in [0, 1) for the counter-th token of a sampler seeded
// with (seed_lo, seed_hi): the top 24 bits of the first Philox word of
// counter (counter, 0, 0, 0), times 2^-24.
fn sample_uniform(seed_lo: u32, seed_hi: u32, counter: u32) -> f32 {
    let r = philox4x32_10(vec4<u32>(counter, 0u, 0u, 0u), vec2<u32>(seed_lo, seed_hi));
    return f32(r.x >> 8u) * (1.0 / 16777216.0);
}
