// matmul.wgsl: grouped, tiled matrix-matrix products for many tokens (prefill
// and batched decode).
//! defines: WG=256 TR=64 TT=32 DQ8_BODY=return(W8());
//
// The same jobs as matvec.wgsl (jobs.wgsl), for T tokens at once:
//     y[t][row] = epi(Σ_c W[row][c] · x[t][c])
// A workgroup computes a tile of TR rows × TT tokens of one job, walking K in
// steps of 32: it dequantizes the TR×32 weight tile once into workgroup
// memory (each weight is read from the arena once per TT tokens) together
// with the TT×32 input tile, then every invocation accumulates
// TR·TT/WG outputs. K must be a multiple of 32.
//
// Grid: x = Σ_jobs ceil(rows/TR) row blocks (job j owns x in [wg_start, …)),
// y = ceil(T/TT) token blocks.
//
// Entry point matmul; bindings as matvec.wgsl:
//   0 W:    weight arena, [words] u32
//   1 act:  activations, [floats] f32
//   2 P:    uniform MatvecParams
//   3 S:    uniform StepParams

#include "common.wgsl"
#include "formats.wgsl"
#include "jobs.wgsl"

const WG: u32 = {{WG}}u;
const TR: u32 = {{TR}}u;          // rows per tile
const TT: u32 = {{TT}}u;          // tokens per tile
const KT: u32 = 32u;              // columns per step
const OUT_PER: u32 = TR * TT / WG; // outputs per invocation (tokens of one row)

@group(0) @binding(0) var<storage, read> W: array<u32>;          // W: [words] u32, weight arena
@group(0) @binding(1) var<storage, read_write> act: array<f32>;  // act: [floats] f32
@group(0) @binding(2) var<uniform> P: MatvecParams;
@group(0) @binding(3) var<uniform> S: StepParams;

const W_TILE: u32 = TR * (KT + 1u);
const X_TILE: u32 = TT * KT;
var<workgroup> w_tile: array<f32, W_TILE>;  // [TR][KT+1], padded against bank conflicts
var<workgroup> x_tile: array<f32, X_TILE>;  // [TT][KT]

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let job = P.jobs[find_job(wid.x)];
    let row0 = (wid.x - job.wg_start) * TR;
    let tok0 = wid.y * TT;
    let T = S.t;
    // This invocation's outputs: row r, tokens tg*OUT_PER .. +OUT_PER.
    let r = lid % TR;
    let tg = lid / TR;

    var acc: array<f32, OUT_PER>;
    for (var i = 0u; i < OUT_PER; i = i + 1u) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < job.k; k0 = k0 + KT) {
        // Weight tile: TR rows × 4 pieces of 8.
        for (var i = lid; i < TR * 4u; i = i + WG) {
            let tr = i / 4u;
            let piece = i % 4u;
            var w = W8(vec4<f32>(0.0), vec4<f32>(0.0));
            if (row0 + tr < job.rows) {
                w = dq8(job.fmt, job.q, job.s, job.k, row0 + tr, k0 / 8u + piece);
            }
            let base = tr * (KT + 1u) + piece * 8u;
            w_tile[base] = w.a.x;
            w_tile[base + 1u] = w.a.y;
            w_tile[base + 2u] = w.a.z;
            w_tile[base + 3u] = w.a.w;
            w_tile[base + 4u] = w.b.x;
            w_tile[base + 5u] = w.b.y;
            w_tile[base + 6u] = w.b.z;
            w_tile[base + 7u] = w.b.w;
        }
        // Input tile: TT tokens × 32 columns.
        for (var i = lid; i < TT * KT; i = i + WG) {
            let tt = i / KT;
            let c = i % KT;
            var v = 0.0;
            if (tok0 + tt < T) {
                v = act[job.x_off + (tok0 + tt) * job.x_stride + k0 + c];
            }
            x_tile[i] = v;
        }
        workgroupBarrier();
        for (var c = 0u; c < KT; c = c + 1u) {
            let w = w_tile[r * (KT + 1u) + c];
            for (var i = 0u; i < OUT_PER; i = i + 1u) {
                acc[i] = acc[i] + w * x_tile[(tg * OUT_PER + i) * KT + c];
            }
        }
        workgroupBarrier();
    }
    let row = row0 + r;
    if (row < job.rows) {
        for (var i = 0u; i < OUT_PER; i = i + 1u) {
            let t = tok0 + tg * OUT_PER + i;
            if (t < T) {
                let o = job.y_off + t * job.y_stride + row;
                act[o] = apply_epi(job.epi, acc[i], o);
            }
        }
    }
}
