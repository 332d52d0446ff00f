// bandwidth.wgsl: a streaming read, to measure the device's memory bandwidth
// (the roofline that `rwkv bench` compares the engine with).
//! defines: WG=256
//
// Entry point read_sum: every invocation sums the vec4 words i, i + n_inv,
// i + 2·n_inv, … of src (coalesced: adjacent invocations read adjacent 16
// bytes) and the workgroup writes one sum to out, so no read is optimised away.
//   0 src: [n] vec4<f32>
//   1 out: [workgroups] f32
//   2 P:   uniform { n: vec4 count, n_inv: total invocations }

#include "common.wgsl"

const WG: u32 = {{WG}}u;

struct Params {
    n: u32,
    n_inv: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;      // src: [n] vec4<f32>
@group(0) @binding(1) var<storage, read_write> out: array<f32>;      // out: [workgroups] f32
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(WG)
fn read_sum(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    var acc = vec4<f32>(0.0);
    for (var i = gid.x; i < P.n; i = i + P.n_inv) {
        acc = acc + src[i];
    }
    let s = wg_reduce_sum(lid, acc.x + acc.y + acc.z + acc.w);
    if (lid == 0u) {
        out[wid.x] = s;
    }
}
