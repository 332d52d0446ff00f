// common.wgsl: the shared prelude of every rwkv-gpu kernel.
//
// CONVENTIONS (read this before writing a kernel)
//
// 1. One file per kernel family (elementwise.wgsl, matvec.wgsl, ...). A file
//    may hold several entry points that share bindings and helpers.
//
// 2. A kernel file carries, near its top, its defines line, machine-read by
//    shaders.Defaults and by the tests:
//        //! defines: WG=256 N_HEAD=12
//    It lists every {{PLACEHOLDER}} the file (and what it includes) uses,
//    with a value that compiles; callers pass their own values to
//    shaders.Source. A placeholder missing from the map, or a map key that
//    the text never uses, is an error, so typos fail loudly. A file without
//    a defines line is an include-only fragment (like this one): it is never
//    compiled alone, and its placeholders are listed by the kernels that
//    include it. gpu's tests compile every @compute entry of every kernel
//    file with its documented defines.
//
// 3. Placeholders are written {{NAME}} (NAME = [A-Z][A-Z0-9_]*) and are
//    replaced textually, before compiling (wgpu-native has no pipeline
//    override constants through our binding). Give them a type at the one
//    place they enter the WGSL, e.g.  const WG: u32 = {{WG}}u;
//
// 4. Workgroup size: every file that includes common.wgsl declares
//        const WG: u32 = {{WG}}u;      // invocations per workgroup, power of 2
//    and uses @workgroup_size(WG) (1-D). The helpers below (flat_index,
//    wg_reduce_*) rely on that constant.
//
// 5. Bindings: bind group 0 only. Binding numbers are dense from 0: inputs
//    first, then outputs, then (last) the uniform parameter block
//        @group(0) @binding(N) var<uniform> P: Params;
//    Every binding has a shape comment, e.g.
//        // x: [D] f32          (logical shape, element type as stored)
//        // w: [R, C/2] u32     (f16 pairs, two per word, low half first)
//    An entry point that does not use some binding simply skips it; the Go
//    side then passes an empty gpu.Binding{} at that position.
//
// 6. Parameters: a struct of u32/f32/i32 scalars (no vec3), nested structs
//    and arrays of them, each nested struct or array starting at a multiple
//    of 16 bytes, so that WGSL's uniform layout equals the packed layout of
//    the Go struct that mirrors it field by field (gpu/engine/params.go,
//    encoded by gpu.Device.ParamsOf). gpu/engine's TestParamBlocksMatchWGSL
//    checks names, types and offsets of every block against this text.
//
// 7. Element types: f32 buffers are array<f32>. f16 is NOT enabled in WGSL
//    (wgpu-native rejects `enable f16;`): f16 and bf16 data is stored packed,
//    two halves per u32 word (little-endian: element 2k in the low 16 bits),
//    declared array<u32>, and read with the helpers below. Quantized blocks
//    (int8/int4 + scales) are likewise bound as array<u32> and decoded with
//    the byte/nibble helpers; a block that is not a multiple of 4 bytes is
//    addressed by byte offset (word = off >> 2u).
//
// 8. Large dispatches: at most 65535 workgroups per dimension. Kernels over
//    a flat range use flat_index(gid, nwg) and check it against the length;
//    the Go side uses dev.Grid(n, WG) which folds the count into x and y.
//
// This file must stay placeholder-free and binding-free. It relies on the
// including file declaring WG.

// ---- indexing -------------------------------------------------------------

// flat_index turns a (possibly 2-D folded) global id into a linear index.
// Pass @builtin(global_invocation_id) and @builtin(num_workgroups).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// ---- f16 / bf16 stored in u32 words --------------------------------------

// f16_lo / f16_hi: the low (even element) or high (odd element) half of a word.
fn f16_lo(w: u32) -> f32 {
    return unpack2x16float(w).x;
}

fn f16_hi(w: u32) -> f32 {
    return unpack2x16float(w).y;
}

// f16_pick returns element i of a packed f16 array, given the word that holds
// it: f16_pick(W[i >> 1u], i).
fn f16_pick(w: u32, i: u32) -> f32 {
    let v = unpack2x16float(w);
    return select(v.x, v.y, (i & 1u) == 1u);
}

// f16_bits converts 16 raw f16 bits (in the low half of h) to f32.
fn f16_bits(h: u32) -> f32 {
    return unpack2x16float(h & 0xffffu).x;
}

// f16x4 unpacks two words (four consecutive f16 values) at once.
fn f16x4(w0: u32, w1: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w0), unpack2x16float(w1));
}

// bf16_lo / bf16_hi: bfloat16 halves (bf16 is the top half of an f32).
fn bf16_lo(w: u32) -> f32 {
    return bitcast<f32>(w << 16u);
}

fn bf16_hi(w: u32) -> f32 {
    return bitcast<f32>(w & 0xffff0000u);
}

// ---- bytes and nibbles ----------------------------------------------------

// byte_at returns byte (i mod 4) of w as 0..255 (little-endian: byte 0 is the
// lowest). With a byte offset off into a u32 array B: byte_at(B[off >> 2u], off).
fn byte_at(w: u32, i: u32) -> u32 {
    return (w >> ((i & 3u) * 8u)) & 0xffu;
}

// sbyte_at is byte_at sign-extended to i32 (-128..127), for int8 weights.
fn sbyte_at(w: u32, i: u32) -> i32 {
    return bitcast<i32>(w << ((3u - (i & 3u)) * 8u)) >> 24u;
}

// nibble_at returns 4-bit field (i mod 8) of w (field 0 = lowest bits).
fn nibble_at(w: u32, i: u32) -> u32 {
    return (w >> ((i & 7u) * 4u)) & 0xfu;
}

// u16_at_byte reads the 16-bit little-endian value that starts at byte offset
// off, given the word holding that byte (w0 = B[off >> 2u]) and the next one
// (w1 = B[(off >> 2u) + 1u], only read when off mod 4 == 3). off must be even
// for f16 data; odd offsets are allowed for packed structs.
fn u16_at_byte(w0: u32, w1: u32, off: u32) -> u32 {
    let s = (off & 3u) * 8u;
    if (s == 24u) {
        return (w0 >> 24u) | ((w1 & 0xffu) << 8u);
    }
    return (w0 >> s) & 0xffffu;
}

// ---- workgroup reductions -------------------------------------------------
//
// Pattern: every invocation of the workgroup calls the reducer from uniform
// control flow (not inside a branch on the invocation id) with its partial
// value and @builtin(local_invocation_index); all receive the total. WG must
// be a power of two. The scratch array is shared, so a kernel may call the
// reducers any number of times in sequence.

var<workgroup> wg_scratch: array<f32, WG>;

fn wg_reduce_sum(lid: u32, v: f32) -> f32 {
    wg_scratch[lid] = v;
    workgroupBarrier();
    for (var s: u32 = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            wg_scratch[lid] = wg_scratch[lid] + wg_scratch[lid + s];
        }
        workgroupBarrier();
    }
    let r = wg_scratch[0];
    workgroupBarrier();
    return r;
}

fn wg_reduce_max(lid: u32, v: f32) -> f32 {
    wg_scratch[lid] = v;
    workgroupBarrier();
    for (var s: u32 = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            wg_scratch[lid] = max(wg_scratch[lid], wg_scratch[lid + s]);
        }
        workgroupBarrier();
    }
    let r = wg_scratch[0];
    workgroupBarrier();
    return r;
}
