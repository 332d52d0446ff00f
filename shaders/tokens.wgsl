// tokens.wgsl: what happens at the two ends of the network: the embedding
// lookup (with ln0) and the greedy choice of the next token.
//! defines: WG=256 DQ8_BODY=return(W8());
//
// Entry point embed, one workgroup per token t (grid x = T):
//     x[t] = LN(E[id]; ln0)   when row_lo ≤ id < row_hi
// The table may be split by rows across arenas (one dispatch per part); the
// part holding the row writes it. Token ids come from a GPU buffer: a
// token's id is either written by the host or the token chosen for its
// sequence by an earlier step (tok[t].src says where), so decode steps can
// be chained without a round trip.
//
// Entry point argmax, one workgroup per head row (grid x = R): the index of
// the row's largest logit (lowest index on ties, NaN never wins; 0 when
// every value is NaN) and the count of non-finite logits go to
// ids[out + 2·row] and ids[out + 2·row + 1]; the id also becomes the chosen
// token of the row's slot, ids[chosen + slot].
//
// Bindings:
//   0 W:    embedding arena (embed), [words] u32
//   1 vec:  global f32 vectors (ln0 weight and bias), [floats] f32
//   2 act:  activations and logits, [floats] f32
//   3 ids:  token ids, outputs and chosen tokens, [n] u32
//   4 P:    uniform EmbedParams (embed)
//   5 tok:  per-token metadata, [T][4] u32 (embed reads .z, the ids index
//           of a chosen token or ~0, and .w, the id the host wrote)
//   6 rows: the head's rows, [R][2] u32: (token index, slot) (argmax)
//   7 A:    uniform ArgmaxParams (argmax)

#include "common.wgsl"
#include "rowstats.wgsl"
#include "formats.wgsl"

const WG: u32 = {{WG}}u;

struct EmbedParams {
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
}

struct ArgmaxParams {
    v: u32,          // vocabulary (row length)
    logits: u32,     // act offset of logits row 0
    out: u32,        // ids offset of the per-row (id, non-finite count) pairs
    chosen: u32,     // ids offset of the per-slot chosen tokens
}

@group(0) @binding(0) var<storage, read> W: array<u32>;          // W: [words] u32
@group(0) @binding(1) var<storage, read> vec: array<f32>;        // vec: [floats] f32
@group(0) @binding(2) var<storage, read_write> act: array<f32>;  // act: [floats] f32
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;  // ids: [n] u32
@group(0) @binding(4) var<uniform> P: EmbedParams;
@group(0) @binding(5) var<storage, read> tok: array<u32>;        // tok: [T][4] u32
@group(0) @binding(6) var<storage, read> rows: array<u32>;       // rows: [R][2] u32
@group(0) @binding(7) var<uniform> A: ArgmaxParams;

// dq8 reads 8 weights of any format the kernel was specialised for: a
// direct call when there is one (no branch), else a switch on fmt.
fn dq8(fmt: u32, q: u32, s: u32, k: u32, row: u32, p: u32) -> W8 {
    {{DQ8_BODY}}
}

@compute @workgroup_size(WG)
fn embed(@builtin(workgroup_id) wid: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    // tok[t].z: where the id is on the device (a chosen token), or ~0 when
    // the host wrote it in tok[t].w.
    let src = tok[4u * t + 2u];
    var id = tok[4u * t + 3u];
    if (src != 0xffffffffu) {
        id = ids[src];
    }
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
var<workgroup> bad_n: array<u32, WG>;

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = wid.x;
    let base = A.logits + row * A.v;
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    var bad = 0u;
    for (var i = lid; i < A.v; i = i + WG) {
        let x = act[base + i];
        // NaN fails both comparisons; Inf is beyond the largest finite f32.
        if (!(abs(x) <= bitcast<f32>(0x7f7fffffu))) {
            bad = bad + 1u;
        }
        if (x > bv || (bi == 0xffffffffu && x == x)) {
            bv = x;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    bad_n[lid] = bad;
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
            bad_n[lid] = bad_n[lid] + bad_n[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var id = best_i[0];
        if (id == 0xffffffffu) {
            id = 0u;
        }
        ids[A.out + 2u * row] = id;
        ids[A.out + 2u * row + 1u] = bad_n[0];
        ids[A.chosen + rows[2u * row + 1u]] = id;
    }
}
