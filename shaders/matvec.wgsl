// matvec.wgsl: grouped matrix-vector products for a few tokens (decode).
//! defines: WG=256 ROWS=4 MAXT=4 DQ8_BODY=return(W8());
//
// One dispatch runs up to 8 jobs. A job multiplies one weight matrix (or a
// row range of one, when a big matrix is split across arenas) with the
// activation vectors of T tokens (T ≤ MAXT) and applies an epilogue:
//     y[t][row] = epi(Σ_c W[row][c] · x[t][c])
// Jobs may use different formats (the DQ8 switch) and inputs, so the whole
// "r, k, v and the four LoRA down projections" stage is one dispatch.
//
// Work split: a workgroup owns ROWS consecutive rows of one job; its WG
// invocations are ROWS teams of TPR = WG/ROWS lanes, a team per row; lane l
// reads the row's 8-element pieces l, l+TPR, ... (adjacent lanes read
// adjacent memory) and the team sums its partials in workgroup memory.
// Workgroups are numbered across jobs: job j owns [wg_start, wg_start +
// ceil(rows/ROWS)); the grid may be folded into y (gpu.Device.Grid).
//
// Entry point matvec; bindings:
//   0 W:    weight arena, [words] u32 (see formats.wgsl)
//   1 act:  activations, [floats] f32 (inputs and outputs at job offsets)
//   2 P:    uniform MatvecParams (the job table and the token count)

#include "common.wgsl"
#include "formats.wgsl"
#include "jobs.wgsl"

const WG: u32 = {{WG}}u;
const ROWS: u32 = {{ROWS}}u;
const MAXT: u32 = {{MAXT}}u;
const TPR: u32 = WG / ROWS;

@group(0) @binding(0) var<storage, read> W: array<u32>;          // W: [words] u32, weight arena
@group(0) @binding(1) var<storage, read_write> act: array<f32>;  // act: [floats] f32
@group(0) @binding(2) var<uniform> P: MatvecParams;

fn x8(off: u32) -> W8 {
    return W8(vec4<f32>(act[off], act[off + 1u], act[off + 2u], act[off + 3u]),
              vec4<f32>(act[off + 4u], act[off + 5u], act[off + 6u], act[off + 7u]));
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let g = wid.x + wid.y * nwg.x;
    let job = P.jobs[find_job(g)];
    let team = lid / TPR;
    let lane = lid % TPR;
    let row = (g - job.wg_start) * ROWS + team;
    let live = row < job.rows;
    let T = min(P.t, MAXT);

    // Token loops have the constant bound MAXT (guarded by t < T) so that
    // compilers unroll them and keep acc in registers.
    var acc: array<f32, MAXT>;
    for (var t = 0u; t < MAXT; t = t + 1u) {
        acc[t] = 0.0;
    }
    if (live) {
        let pieces = job.k / 8u;
        for (var p = lane; p < pieces; p = p + TPR) {
            let w = dq8(job.fmt, job.q, job.s, job.k, row, p);
            for (var t = 0u; t < MAXT; t = t + 1u) {
                if (t < T) {
                    let x = x8(job.x_off + t * job.x_stride + 8u * p);
                    acc[t] = acc[t] + w8_dot(w, x.a, x.b);
                }
            }
        }
    }
    for (var t = 0u; t < T; t = t + 1u) {
        wg_scratch[lid] = acc[t];
        workgroupBarrier();
        for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
            if (lane < s) {
                wg_scratch[lid] = wg_scratch[lid] + wg_scratch[lid + s];
            }
            workgroupBarrier();
        }
        if (live && lane == 0u) {
            let o = job.y_off + t * job.y_stride + row;
            act[o] = apply_epi(job.epi, wg_scratch[lid], o);
        }
        workgroupBarrier();
    }
}
