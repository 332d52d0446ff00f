// fma.wgsl: dependent multiply-add chains, to measure the device's float32
// arithmetic throughput (the ceiling that `rwkv bench` compares a prefill's
// GFLOP/s with, as bandwidth.wgsl is for decode's GB/s).
//! defines: WG=256
//
// Entry point fma_chains: invocation i runs 8 independent vec4 chains (32
// lanes, enough independent work to hide the multiply-add latency)
//     a ← fma(a, m, c)      P.iters times,
// from a = start(i, chain), and writes the sum of its 32 lanes to out[i].
// m, c and iters come from the uniform, so the compiler can fold nothing;
// the host checks every out[i] against the recurrence's closed form, so
// work that was dropped shows. 2 FLOP per lane per iteration.
//   0 out: [n_inv] f32
//   1 P:   uniform FmaParams

#include "common.wgsl"

const WG: u32 = {{WG}}u;

struct FmaParams {
    iters: u32,
    m: f32,
    c: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;  // out: [n_inv] f32
@group(0) @binding(1) var<uniform> P: FmaParams;

// fma_start is chain j's starting vector in invocation i: lanes
// (i mod 64)/16 + j/4 + (0, 1, 2, 3)/32, in [0, 6).
fn fma_start(i: u32, j: u32) -> vec4<f32> {
    let base = f32(i % 64u) / 16.0 + f32(j) / 4.0;
    return vec4<f32>(base, base + 0.03125, base + 0.0625, base + 0.09375);
}

@compute @workgroup_size(WG)
fn fma_chains(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let m = vec4<f32>(P.m);
    let c = vec4<f32>(P.c);
    var a0 = fma_start(i, 0u);
    var a1 = fma_start(i, 1u);
    var a2 = fma_start(i, 2u);
    var a3 = fma_start(i, 3u);
    var a4 = fma_start(i, 4u);
    var a5 = fma_start(i, 5u);
    var a6 = fma_start(i, 6u);
    var a7 = fma_start(i, 7u);
    for (var n = 0u; n < P.iters; n = n + 1u) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    let s = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
    out[i] = s.x + s.y + s.z + s.w;
}
