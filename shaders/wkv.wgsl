// wkv.wgsl: the heart of RWKV-7 time mix for one head of one sequence,
// token after token (spec/rwkv7.md §3.2 steps 6–16 after the projections).
//! defines: WG=64 DQ8_BODY=return(W8()); UPS_PRECOMPUTED=false DECAY_SCALE=0.606531 GN_EPS=0.00064 L2_FLOOR=1e-12
//
// Entry point wkv, one workgroup per (head h, sequence q): grid (H, seqs),
// WG = N invocations; invocation i owns channel c = h·N + i and row i of the
// head's N×N state (i = value row, j = key column), kept in registers while
// the sequence's tokens are processed in order. Per token:
//   LoRA up projections of the head's N channels (weights in W):
//     w = exp(−0.606531·σ(w0 + W2·hw))     a = σ(a0 + A2·ha)
//     g = G2·hg                            (σ already applied to hg)
//     layer 0: v_first = v; else v += (v_first − v)·σ(v0 + V2·hv)
//   κ̂ = normalize_head(k ⊙ k_k), k ← k ⊙ (1 + (a − 1) ⊙ k_a)
//   sa = Σ_j −κ̂_j S[i][j];  S[i][j] ← S[i][j]·w_j + v_i·k_j + sa·κ̂_j a_j;  y_i = Σ_j S[i][j] r_j
//   o = GroupNorm_head(y)·ln_x.w + ln_x.b + (Σ_j r_j k_j rk_j)·v;  o ← o ⊙ g
// At the end the state rows go back to memory.
// With UPS_PRECOMPUTED the four up projections come from act (written by a
// grouped product before this kernel, [4][tmax][D] at P.ups) instead of
// being computed here; W is then unused.
//
// Bindings:
//   0 W:     weight arena with W2, A2, V2, G2, [words] u32
//   1 vec:   f32 vectors of the layer, [floats] f32
//   2 act:   activations, [floats] f32
//   3 state: recurrent state, [slots][state floats] f32
//   4 P:     uniform WkvParams
//   5 seqs:  the step's sequences, [seqs][4] u32: (first token, token count, slot, 0)

#include "common.wgsl"
#include "formats.wgsl"

const WG: u32 = {{WG}}u;   // = N, the head size
const N: u32 = {{WG}}u;
const UPS_PRECOMPUTED: bool = {{UPS_PRECOMPUTED}};
// Model constants, passed by the engine from package model.
const DECAY_SCALE: f32 = {{DECAY_SCALE}};   // w = exp(−DECAY_SCALE·σ(…))
const GN_EPS: f32 = {{GN_EPS}};             // group norm epsilon
const L2_FLOOR: f32 = {{L2_FLOOR}};         // floor of the key's L2 norm

struct Up {
    fmt: u32,
    k: u32,   // rank (columns)
    q: u32,   // quants plane offset in W
    s: u32,   // scales plane offset in W
}

struct WkvParams {
    d: u32,
    layer0: u32,        // 1 in layer 0 (records v_first), else 0
    slot_stride: u32,   // floats per slot in state
    wkv_off: u32,       // WKV matrices offset inside a slot
    hid_stride: u32,    // floats between tokens in the LoRA hidden rows
    hw: u32,            // act offsets of token 0's LoRA hidden vectors
    ha: u32,
    hv: u32,
    hg: u32,
    r: u32,             // act offsets of token 0's r, k, v (d floats per token)
    k: u32,
    v: u32,
    vfirst: u32,        // act offset of token 0's v_first
    o: u32,             // act offset of token 0's output
    w0: u32,            // vec offsets [D] each
    a0: u32,
    v0: u32,
    kk: u32,
    ka: u32,
    rk: u32,
    lnx_w: u32,
    lnx_b: u32,
    ups: u32,           // act offset of the precomputed up projections (w, a, v, g)
    ups_stride: u32,    // floats between them (tmax·D)
    w2: Up,
    a2: Up,
    v2: Up,
    g2: Up,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;           // W: [words] u32
@group(0) @binding(1) var<storage, read> vec: array<f32>;         // vec: [floats] f32
@group(0) @binding(2) var<storage, read_write> act: array<f32>;   // act: [floats] f32
@group(0) @binding(3) var<storage, read_write> state: array<f32>; // state: [slots][floats] f32
@group(0) @binding(4) var<uniform> P: WkvParams;
@group(0) @binding(5) var<storage, read> seqs: array<vec4<u32>>;  // seqs: [seqs][4] u32

// dq8 reads 8 weights of any format the kernel was specialised for: a
// direct call when there is one (no branch), else a switch on fmt.
fn dq8(fmt: u32, q: u32, s: u32, k: u32, row: u32, p: u32) -> W8 {
    {{DQ8_BODY}}
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-clamp(x, -88.0, 88.0)));
}

// up returns row c of a LoRA up matrix times the hidden vector at act[h..].
fn up(u: Up, c: u32, h: u32) -> f32 {
    var acc = 0.0;
    for (var p = 0u; p < u.k / 8u; p = p + 1u) {
        let w = dq8(u.fmt, u.q, u.s, u.k, c, p);
        let o = h + 8u * p;
        acc = acc + w8_dot(w, vec4<f32>(act[o], act[o + 1u], act[o + 2u], act[o + 3u]),
                              vec4<f32>(act[o + 4u], act[o + 5u], act[o + 6u], act[o + 7u]));
    }
    return acc;
}

// lora_up is up projection m (0 w, 1 a, 2 v, 3 g) of channel c for the token
// whose LoRA hidden vector is at act[h..] and whose channel is td = t·D + c.
fn lora_up(m: u32, u: Up, c: u32, h: u32, td: u32) -> f32 {
    if (UPS_PRECOMPUTED) {
        return act[P.ups + m * P.ups_stride + td];
    }
    return up(u, c, h);
}

var<workgroup> sh_w: array<f32, N>;
var<workgroup> sh_k: array<f32, N>;
var<workgroup> sh_r: array<f32, N>;
var<workgroup> sh_alpha: array<f32, N>;
var<workgroup> sh_beta: array<f32, N>;

@compute @workgroup_size(WG)
fn wkv(@builtin(workgroup_id) wid: vec3<u32>,
       @builtin(local_invocation_index) i: u32) {
    let h = wid.x;
    let q = wid.y;
    let first = seqs[q].x;
    let count = seqs[q].y;
    let slot = seqs[q].z;
    let c = h * N + i;
    let sbase = slot * P.slot_stride + P.wkv_off + (h * N + i) * N;

    var s: array<f32, N>;
    for (var j = 0u; j < N; j = j + 1u) {
        s[j] = state[sbase + j];
    }
    for (var n = 0u; n < count; n = n + 1u) {
        let t = first + n;
        let td = t * P.d + c;
        let th = t * P.hid_stride;
        let decay = exp(-DECAY_SCALE * sigmoid(vec[P.w0 + c] + lora_up(0u, P.w2, c, P.hw + th, td)));
        let a = sigmoid(vec[P.a0 + c] + lora_up(1u, P.a2, c, P.ha + th, td));
        let g = lora_up(3u, P.g2, c, P.hg + th, td);
        let kraw = act[P.k + td];
        var v = act[P.v + td];
        if (P.layer0 == 1u) {
            act[P.vfirst + td] = v;
        } else {
            let gate = sigmoid(vec[P.v0 + c] + lora_up(2u, P.v2, c, P.hv + th, td));
            v = v + (act[P.vfirst + td] - v) * gate;
        }
        let kk = kraw * vec[P.kk + c];
        let nrm = sqrt(wg_reduce_sum(i, kk * kk));
        let kh = kk / max(nrm, L2_FLOOR);
        let k = kraw * (1.0 + (a - 1.0) * vec[P.ka + c]);
        let r = act[P.r + td];
        sh_w[i] = decay;
        sh_k[i] = k;
        sh_r[i] = r;
        sh_alpha[i] = -kh;
        sh_beta[i] = kh * a;
        workgroupBarrier();

        var sa = 0.0;
        for (var j = 0u; j < N; j = j + 1u) {
            sa = sa + sh_alpha[j] * s[j];
        }
        var y = 0.0;
        for (var j = 0u; j < N; j = j + 1u) {
            let nv = s[j] * sh_w[j] + v * sh_k[j] + sa * sh_beta[j];
            s[j] = nv;
            y = y + nv * sh_r[j];
        }
        let mean = wg_reduce_sum(i, y) / f32(N);
        let dy = y - mean;
        let variance = wg_reduce_sum(i, dy * dy) / f32(N);
        var o = dy / sqrt(variance + GN_EPS) * vec[P.lnx_w + c] + vec[P.lnx_b + c];
        let rho = wg_reduce_sum(i, r * k * vec[P.rk + c]);
        o = (o + rho * v) * g;
        act[P.o + td] = o;
        workgroupBarrier();
    }
    for (var j = 0u; j < N; j = j + 1u) {
        state[sbase + j] = s[j];
    }
}
