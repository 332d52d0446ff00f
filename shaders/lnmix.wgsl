// lnmix.wgsl: layer norm plus token shift (the first step of time mix and of
// channel mix), and the plain layer norms (ln0 after the embedding, ln_out
// before the head).
//! defines: WG=256
//
// Entry point lnmix, one workgroup per token t (grid x = T):
//     xa[t]     = LN(x[t]; w, b, eps)
//     prev      = first token of its sequence ? shift (from the state) : LN(x[t−1])
//     mix[m][t] = xa[t] + (prev − xa[t]) ⊙ mu[m]      for m < n_mix
// The workgroup of a sequence's first token is the only reader of the stored
// shift; after reading it, the same invocations store LN(x[last]) of the
// sequence there (element by element, so no other workgroup races with it).
// With n_mix = 0 it is a plain layer norm (xa only; the state is untouched).
//
// Entry point ln_rows, one workgroup per head row i (grid x = R):
//     xa[i] = LN(x[rows[i].token])     (ln_out, gathering the rows the head needs)
//
// Bindings:
//   0 vec:   f32 vectors of the layer (norm weights, mix rows), [floats] f32
//   1 act:   activations, [floats] f32
//   2 state: recurrent state, [slots][state floats] f32
//   3 tok:   per-token metadata, [T][4] u32: (slot | first-of-sequence << 31,
//            index of the sequence's last token, id source, host id)
//   4 P:     uniform LnParams
//   5 rows:  the head's rows, [R][2] u32: (token index in the step, slot)

#include "common.wgsl"
#include "rowstats.wgsl"

const WG: u32 = {{WG}}u;

struct LnParams {
    d: u32,           // vector length D
    eps: f32,         // layer norm epsilon
    n_mix: u32,       // mixed outputs per token (0, 1 or 6)
    x_off: u32,       // act offset of x[0]; tokens are d apart
    xa_off: u32,      // act offset of xa[0]
    mix_off: u32,     // act offset of mix[0][0]
    mix_stride: u32,  // floats between mix[m] and mix[m+1]
    ln_w: u32,        // vec offset of the norm weight [D]
    ln_b: u32,        // vec offset of the norm bias [D]
    mu: u32,          // vec offset of the mix rows [n_mix][D]
    shift_off: u32,   // offset of this layer's shift vector inside a slot's state
    slot_stride: u32, // floats per slot in state
}

@group(0) @binding(0) var<storage, read> vec: array<f32>;           // vec: [floats] f32
@group(0) @binding(1) var<storage, read_write> act: array<f32>;     // act: [floats] f32
@group(0) @binding(2) var<storage, read_write> state: array<f32>;   // state: [slots][floats] f32
@group(0) @binding(3) var<storage, read> tok: array<u32>;           // tok: [T][4] u32
@group(0) @binding(4) var<uniform> P: LnParams;
@group(0) @binding(5) var<storage, read> rows: array<u32>;          // rows: [R][2] u32

// stats returns the mean and 1/sqrt(var + eps) of act[off .. off+d).
fn stats(off: u32, lid: u32) -> vec2<f32> {
    return row_stats(off, P.d, P.eps, lid);
}

fn norm(v: f32, st: vec2<f32>, i: u32) -> f32 {
    return (v - st.x) * st.y * vec[P.ln_w + i] + vec[P.ln_b + i];
}

@compute @workgroup_size(WG)
fn lnmix(@builtin(workgroup_id) wid: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    let tm = tok[4u * t];
    let first = (tm >> 31u) == 1u;
    let slot = tm & 0x7fffffffu;
    let last = tok[4u * t + 1u];
    let xo = P.x_off + t * P.d;
    let lo = P.x_off + last * P.d;
    let st = stats(xo, lid);
    // Statistics of the previous and of the sequence's last token. Not every
    // workgroup needs them, but computing them everywhere keeps the barriers
    // in uniform control flow.
    let pst = stats(P.x_off + (max(t, 1u) - 1u) * P.d, lid);
    let lst = stats(lo, lid);
    for (var i = lid; i < P.d; i = i + WG) {
        let xa = norm(act[xo + i], st, i);
        act[P.xa_off + t * P.d + i] = xa;
        if (P.n_mix > 0u) {
            var prev = 0.0;
            if (first) {
                prev = state[slot * P.slot_stride + P.shift_off + i];
            } else {
                prev = norm(act[xo - P.d + i], pst, i);
            }
            for (var m = 0u; m < P.n_mix; m = m + 1u) {
                act[P.mix_off + m * P.mix_stride + t * P.d + i] = xa + (prev - xa) * vec[P.mu + m * P.d + i];
            }
            if (first) {
                state[slot * P.slot_stride + P.shift_off + i] = norm(act[lo + i], lst, i);
            }
        }
    }
}

@compute @workgroup_size(WG)
fn ln_rows(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let t = rows[2u * wid.x];
    let xo = P.x_off + t * P.d;
    let st = stats(xo, lid);
    for (var i = lid; i < P.d; i = i + WG) {
        act[P.xa_off + wid.x * P.d + i] = norm(act[xo + i], st, i);
    }
}
