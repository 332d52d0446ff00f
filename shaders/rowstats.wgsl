// rowstats.wgsl: layer-norm statistics of one activation row, shared by the
// kernels that normalise (lnmix.wgsl, tokens.wgsl). Include after
// common.wgsl; the including file declares WG and the binding act.

// row_stats returns the mean of act[off .. off+d) and 1/sqrt(var + eps)
// (biased variance, two passes). Every invocation of the workgroup calls it
// from uniform control flow.
fn row_stats(off: u32, d: u32, eps: f32, lid: u32) -> vec2<f32> {
    var s = 0.0;
    for (var i = lid; i < d; i = i + WG) {
        s = s + act[off + i];
    }
    let mean = wg_reduce_sum(lid, s) / f32(d);
    var q = 0.0;
    for (var i = lid; i < d; i = i + WG) {
        let c = act[off + i] - mean;
        q = q + c * c;
    }
    let variance = wg_reduce_sum(lid, q) / f32(d);
    return vec2<f32>(mean, 1.0 / sqrt(variance + eps));
}
