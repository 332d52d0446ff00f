// tokens.wgsl: what happens at the two ends of the network: the embedding
// lookup (with ln0) and the greedy choice of the next token.
//! defines: WG=256 DQ8_BODY=return(W8());
//
// Entry point embed, one workgroup per token t (grid x = T):
//     x[t] = LN(E[ids[t]]; ln0)  when row_lo ≤ ids[t] < row_hi
// The table may be split by rows across arenas (one dispatch per part); the
// part holding the row writes it. Token ids come from a GPU buffer, so the
// next decode step can be recorded before the previous one is read back.
//
// Entry point argmax, one workgroup per logits row (grid x = rows): the index
// of the largest logit (lowest index on ties, NaN never wins) is written to
// ids[next + row]; with history on (row count 1) it is also appended to
// ids[hist + n] where n = ids[count_at] is then incremented.
//
// Bindings:
//   0 W:    embedding arena (embed); unused by argmax, [words] u32
//   1 vec:  global f32 vectors (ln0 weight and bias), [floats] f32
//   2 act:  activations and logits, [floats] f32
//   3 ids:  token ids and generation history, [n] u32
//   4 P:    uniform TokParams

#include "common.wgsl"
#include "rowstats.wgsl"
#include "formats.wgsl"

const WG: u32 = {{WG}}u;

struct TokParams {
    d: u32,          // embedding width
    eps: f32,        // ln0 epsilon
    fmt: u32,        // embedding format
    q: u32,          // embedding planes in W
    s: u32,
    row_lo: u32,     // rows [row_lo, row_hi) live in this arena
    row_hi: u32,
    x_off: u32,      // act offset of x[0]
    ln_w: u32,       // vec offsets of ln0
    ln_b: u32,
    ids_off: u32,    // ids offset of token 0's id (embed)
    v: u32,          // vocabulary (argmax row length)
    logits: u32,     // act offset of logits row 0
    next: u32,       // ids offset receiving each row's argmax
    hist: u32,       // ids offset of the history; 0xffffffff = off
    count_at: u32,   // ids offset of the history length
}

@group(0) @binding(0) var<storage, read> W: array<u32>;          // W: [words] u32
@group(0) @binding(1) var<storage, read> vec: array<f32>;        // vec: [floats] f32
@group(0) @binding(2) var<storage, read_write> act: array<f32>;  // act: [floats] f32
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;  // ids: [n] u32
@group(0) @binding(4) var<uniform> P: TokParams;

// dq8 reads 8 weights of any format the kernel was specialised for: a
// direct call when there is one (no branch), else a switch on fmt.
fn dq8(fmt: u32, q: u32, s: u32, k: u32, row: u32, p: u32) -> W8 {
    {{DQ8_BODY}}
}

@compute @workgroup_size(WG)
fn embed(@builtin(workgroup_id) wid: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    let id = ids[P.ids_off + t];
    // Not a uniform value (ids is written by argmax), so no early return:
    // every invocation reaches the barriers, only the owner part writes.
    let own = id >= P.row_lo && id < P.row_hi;
    let xo = P.x_off + t * P.d;
    for (var p = lid; own && p < P.d / 8u; p = p + WG) {
        let w = dq8(P.fmt, P.q, P.s, P.d, id - P.row_lo, p);
        let o = xo + 8u * p;
        act[o] = w.a.x;
        act[o + 1u] = w.a.y;
        act[o + 2u] = w.a.z;
        act[o + 3u] = w.a.w;
        act[o + 4u] = w.b.x;
        act[o + 5u] = w.b.y;
        act[o + 6u] = w.b.z;
        act[o + 7u] = w.b.w;
    }
    storageBarrier();
    workgroupBarrier();
    let st = row_stats(xo, P.d, P.eps, lid);
    for (var i = lid; own && i < P.d; i = i + WG) {
        act[xo + i] = (act[xo + i] - st.x) * st.y * vec[P.ln_w + i] + vec[P.ln_b + i];
    }
}

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = wid.x;
    let base = P.logits + row * P.v;
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = lid; i < P.v; i = i + WG) {
        let x = act[base + i];
        if (x > bv || (bi == 0xffffffffu && x == x)) {
            bv = x;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            let ov = best_v[lid + s];
            let oi = best_i[lid + s];
            let mine = best_i[lid];
            if (oi != 0xffffffffu && (mine == 0xffffffffu || ov > best_v[lid] || (ov == best_v[lid] && oi < mine))) {
                best_v[lid] = ov;
                best_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var id = best_i[0];
        if (id == 0xffffffffu) {
            id = 0u;
        }
        ids[P.next + row] = id;
        if (P.hist != 0xffffffffu) {
            let n = ids[P.count_at];
            ids[P.hist + n] = id;
            ids[P.count_at] = n + 1u;
        }
    }
}
