// matmul.wgsl: grouped, tiled matrix-matrix products for many tokens (prefill
// and batched decode).
//! defines: WG=256 TR=64 TT=64 DQ8_BODY=return(W8());
//
// The same jobs as matvec.wgsl (jobs.wgsl), for T tokens at once:
//     y[t][row] = epi(Σ_c W[row][c] · x[t][c])
// A workgroup computes a tile of TR rows × TT tokens of one job, walking K in
// steps of 32: it dequantizes the TR×32 weight tile once into workgroup
// memory (each weight is read and decoded once per TT tokens) together with
// the TT×32 input tile, then every invocation accumulates a 4×4 register
// tile (4 rows × 4 tokens: 8 workgroup-memory reads per 16 multiply-adds),
// a partial sum per 32-column step added to the total after the step.
// WG·16 = TR·TT. K must be a multiple of 32.
//
// Grid: x = Σ_jobs ceil(rows/TR) row blocks (job j owns x in [wg_start, …)),
// y = ceil(T/TT) token blocks.
//
// Entry point matmul; bindings as matvec.wgsl:
//   0 W:    weight arena, [words] u32
//   1 act:  activations, [floats] f32
//   2 P:    uniform MatvecParams (the job table and the token count)

#include "common.wgsl"
#include "formats.wgsl"
#include "jobs.wgsl"

const WG: u32 = {{WG}}u;
const TR: u32 = {{TR}}u;          // rows per tile
const TT: u32 = {{TT}}u;          // tokens per tile
const KT: u32 = 32u;              // columns per step
const RT: u32 = TR / 4u;          // invocations along the rows of a tile

@group(0) @binding(0) var<storage, read> W: array<u32>;          // W: [words] u32, weight arena
@group(0) @binding(1) var<storage, read_write> act: array<f32>;  // act: [floats] f32
@group(0) @binding(2) var<uniform> P: MatvecParams;

const W_TILE: u32 = KT * (TR + 1u);
const X_TILE: u32 = KT * (TT + 1u);
var<workgroup> w_tile: array<f32, W_TILE>;  // [KT][TR+1], column-major, padded against bank conflicts
var<workgroup> x_tile: array<f32, X_TILE>;  // [KT][TT+1]

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let job = P.jobs[find_job(wid.x)];
    let row0 = (wid.x - job.wg_start) * TR;
    let tok0 = wid.y * TT;
    let T = P.t;
    // This invocation's outputs: rows r4·4 .. +4 of the tile (interleaved:
    // rows r4 + RT·i) and tokens t4 + (TT/4)·j, so neighbouring invocations
    // read neighbouring workgroup-memory words.
    let r4 = lid % RT;
    let t4 = lid / RT;

    var acc: array<vec4<f32>, 4>;   // acc[j][i]: row r4 + RT·i, token t4 + (TT/4)·j
    for (var j = 0u; j < 4u; j = j + 1u) {
        acc[j] = vec4<f32>(0.0);
    }
    for (var k0 = 0u; k0 < job.k; k0 = k0 + KT) {
        // Weight tile: TR rows × 4 pieces of 8, stored column-major.
        for (var i = lid; i < TR * 4u; i = i + WG) {
            let tr = i / 4u;
            let piece = i % 4u;
            var w = W8(vec4<f32>(0.0), vec4<f32>(0.0));
            if (row0 + tr < job.rows) {
                w = dq8(job.fmt, job.q, job.s, job.k, row0 + tr, k0 / 8u + piece);
            }
            let c = piece * 8u;
            w_tile[(c + 0u) * (TR + 1u) + tr] = w.a.x;
            w_tile[(c + 1u) * (TR + 1u) + tr] = w.a.y;
            w_tile[(c + 2u) * (TR + 1u) + tr] = w.a.z;
            w_tile[(c + 3u) * (TR + 1u) + tr] = w.a.w;
            w_tile[(c + 4u) * (TR + 1u) + tr] = w.b.x;
            w_tile[(c + 5u) * (TR + 1u) + tr] = w.b.y;
            w_tile[(c + 6u) * (TR + 1u) + tr] = w.b.z;
            w_tile[(c + 7u) * (TR + 1u) + tr] = w.b.w;
        }
        // Input tile: TT tokens × 32 columns, stored column-major.
        for (var i = lid; i < TT * KT; i = i + WG) {
            let tt = i / KT;
            let c = i % KT;
            var v = 0.0;
            if (tok0 + tt < T) {
                v = act[job.x_off + (tok0 + tt) * job.x_stride + k0 + c];
            }
            x_tile[c * (TT + 1u) + tt] = v;
        }
        workgroupBarrier();
        // Blocked summation: this step's 32 products go into a fresh partial
        // sum that is then added to the total, so that a rounding error is
        // relative to a sum of 32 terms or of K/32 partials, not to a
        // running sum over all of K (at K = 3072: 8.5 u instead of 53 u,
        // u = 2^-24; gpu.TestMatmulLongK).
        var part: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) {
            part[j] = vec4<f32>(0.0);
        }
        for (var c = 0u; c < KT; c = c + 1u) {
            let wb = c * (TR + 1u) + r4;
            let w = vec4<f32>(w_tile[wb], w_tile[wb + RT], w_tile[wb + 2u * RT], w_tile[wb + 3u * RT]);
            let xb = c * (TT + 1u) + t4;
            let q = TT / 4u;
            part[0] = part[0] + w * x_tile[xb];
            part[1] = part[1] + w * x_tile[xb + q];
            part[2] = part[2] + w * x_tile[xb + 2u * q];
            part[3] = part[3] + w * x_tile[xb + 3u * q];
        }
        for (var j = 0u; j < 4u; j = j + 1u) {
            acc[j] = acc[j] + part[j];
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let t = tok0 + t4 + (TT / 4u) * j;
        for (var i = 0u; i < 4u; i = i + 1u) {
            let row = row0 + r4 + RT * i;
            if (t < T && row < job.rows) {
                let o = job.y_off + t * job.y_stride + row;
                act[o] = apply_epi(job.epi, acc[j][i], o);
            }
        }
    }
}
