// elementwise.wgsl: f32 element-wise kernels over flat arrays (sample family).
//! defines: WG=256
//
// Entry points (dispatch dev.Grid(P.n, WG) workgroups):
//   add:   out[i] = a[i] + b[i]          bindings 0 a, 1 b, 2 out, 3 P
//   scale: out[i] = a[i] * P.s           bindings 0 a, 2 out, 3 P (1 unused)

#include "common.wgsl"

const WG: u32 = {{WG}}u;

struct Params {
    n: u32,   // number of elements
    s: f32,   // scale factor (scale only)
}

@group(0) @binding(0) var<storage, read> a: array<f32>;        // a: [n] f32
@group(0) @binding(1) var<storage, read> b: array<f32>;        // b: [n] f32
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // out: [n] f32
@group(0) @binding(3) var<uniform> P: Params;

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < P.n) {
        out[i] = a[i] + b[i];
    }
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < P.n) {
        out[i] = a[i] * P.s;
    }
}
