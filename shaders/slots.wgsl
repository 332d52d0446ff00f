// slots.wgsl: operations on whole state slots in device memory.
//! defines: WG=256
//
// Entry point copy_slot (grid dev.Grid(P.n, WG)): forks a sequence without
// a host round trip:
//     state[dst·n + i] = state[src·n + i]   for i < n
//     ids[chosen + dst] = ids[chosen + src] (the token chosen for it)
//
// Bindings:
//   0 state: recurrent state, [slots][n] f32
//   1 ids:   token ids; per-slot chosen tokens at P.chosen, [words] u32
//   2 P:     uniform SlotCopyParams

#include "common.wgsl"

const WG: u32 = {{WG}}u;

struct SlotCopyParams {
    n: u32,        // floats per slot
    src: u32,      // source slot
    dst: u32,      // destination slot
    chosen: u32,   // ids offset of the per-slot chosen tokens
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>;  // state: [slots][n] f32
@group(0) @binding(1) var<storage, read_write> ids: array<u32>;    // ids: [words] u32
@group(0) @binding(2) var<uniform> P: SlotCopyParams;

@compute @workgroup_size(WG)
fn copy_slot(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < P.n) {
        state[P.dst * P.n + i] = state[P.src * P.n + i];
    }
    if (i == 0u) {
        ids[P.chosen + P.dst] = ids[P.chosen + P.src];
    }
}
