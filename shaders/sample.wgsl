// sample.wgsl: BlinkDL's RWKV-7 sampler (model.Sampling, spec/tokenizer.md
// §6) on the device: one workgroup per logits row, each row sampled with the
// sampler of a slot whose state (penalties, seen tokens, counter) lives in
// device buffers, so chained decode steps need no host writes. Mirrors
// cpuref/sample.go; gpu/sampler.go drives it.
//! defines: WG=256 MAXROWS4=16
//
// Entry point sample (grid x = rows). Row r uses slot s = row_slots[r], its
// parameters SP[s] and its state; with FLAG_BULK (for tests of the
// distribution) every workgroup samples logits row 0 with slot row_slots[0]
// and makes `draws` draws, draw j using counter counter_base + j, and no
// state changes:
//   1. l[i] = logit[i] − pen[s, i], where pen holds presence + occ·frequency
//      for the seen tokens (computed when the state is updated, so every pass
//      below recomputes bit-identical values); banned ids and −∞ are
//      excluded. A row with a NaN or +∞ logit, or nothing left, is invalid:
//      ids gets 0xffffffff and no state changes.
//   2. Greedy (temperature ≤ 0): the lowest i with l[i] = max l.
//   3. p[i] = exp(l[i] − max)/Σ exp(l − max), flushed to 0 below 2^-126.
//   4. Thresholds without sorting: p ≥ 0, so the order of the bit patterns
//      is the order of the values, and a threshold is found bit by bit, 3
//      bits a round (10 rounds for the 30 bits of values ≤ 1), 7 candidates
//      counted per pass over the row:
//        top-k: the largest c with #{p ≥ c} ≥ k, the k-th largest p;
//        top-p: the largest c with Σ_{p ≥ c} p ≥ top_p, which is the demo's
//               cutoff (the value at the first sorted index whose cumulative
//               sum reaches top_p); 0 when the total never reaches top_p.
//   5. Kept: p > 0 and p ≥ max(tk, c). When 0 < top_p < 1, c > 0 and
//      c ≥ tk, the tokens equal to c become c + (top_p − Σ kept)/count.
//   6. Weights w = kept (temperature 1) or (kept/max kept)^(1/temperature).
//   7. Draw: u = sample_uniform(seed, counter); the first id (in id order)
//      whose cumulative weight exceeds u·Σw. Each invocation owns a
//      contiguous chunk of ids; an exclusive scan of the chunk sums gives
//      each chunk's start, and the chunk holding the crossing finds it.
//   8. ids[ids_off + r] = token (bulk: ids[ids_off + j]), and the slot's
//      chosen token ids[chosen_off + slot] = token unless chosen_off is
//      0xffffffff (the engine's Continue reads it); with FLAG_UPDATE
//      occ = occ·decay + [i = token], seen[token] = 1, pen recomputed,
//      counter + 1; with FLAG_PROBS probs[probs_off + r·v + i] = w[i]/Σw
//      (one-hot when greedy).
//
// Bindings:
//   0 logits:   [rows, v] f32 from logits_off
//   1 SP:       [slots] SlotParams (gpu.samplerSlotParams)
//   2 occ:      [slots, v] f32 decayed counts
//   3 pen:      [slots, v] f32 penalty of each token
//   4 seen:     [slots, seen_words] u32, bit i%32 of word i/32: token i seen
//   5 counters: [slots] u32 tokens sampled since configured
//   6 ids:      [n] u32 chosen tokens
//   7 probs:    [rows, v] f32 final distribution (FLAG_PROBS), else unused
//   8 P:        uniform SampleParams (gpu.sampleParams)

#include "common.wgsl"
#include "philox.wgsl"

const WG: u32 = {{WG}}u;
const MAXROWS4: u32 = {{MAXROWS4}}u;

const FLAG_UPDATE: u32 = 1u;
const FLAG_PROBS: u32 = 2u;
const FLAG_BULK: u32 = 4u;
const NONE: u32 = 0xffffffffu;
const EXCLUDED: f32 = -3.0e38;             // l of a banned id or of −∞
const SMALLEST_NORMAL: f32 = 1.17549435e-38; // 2^-126

struct SlotParams {
    temperature: f32,   // ≤ 0: greedy
    inv_temp: f32,      // 1/temperature
    top_p: f32,         // ≥ 1: off
    top_k: u32,         // 0 or ≥ v: off
    presence: f32,
    frequency: f32,
    decay: f32,
    seed_lo: u32,
    seed_hi: u32,
    pad0: u32,
    ban0: u32,          // banned ids; 0xffffffff = none
    ban1: u32,
    ban2: u32,
    ban3: u32,
    ban4: u32,
    ban5: u32,
    ban6: u32,
    ban7: u32,
}

struct SampleParams {
    v: u32,              // vocabulary
    rows: u32,           // workgroups in this dispatch
    logits_off: u32,     // logits offset of row 0 (floats); rows follow every v
    ids_off: u32,        // ids offset receiving row 0's token (bulk: draw 0's)
    probs_off: u32,      // probs offset of row 0 (floats)
    flags: u32,          // FLAG_UPDATE | FLAG_PROBS | FLAG_BULK
    counter_base: u32,   // bulk: draw j uses counter counter_base + j
    seen_words: u32,     // u32 words per slot in seen
    draws: u32,          // bulk: draws per workgroup (draw j in workgroup j / draws)
    total: u32,          // bulk: draws in this dispatch
    chosen_off: u32,     // ids offset of the per-slot chosen tokens; 0xffffffff = none
    pad1: u32,
    row_slots: array<vec4<u32>, MAXROWS4>, // slot of row r: [r/4][r%4]
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;          // [rows, v] f32
@group(0) @binding(1) var<storage, read> SP: array<SlotParams>;      // [slots] SlotParams
@group(0) @binding(2) var<storage, read_write> occ: array<f32>;       // [slots, v] f32
@group(0) @binding(3) var<storage, read_write> pen: array<f32>;       // [slots, v] f32
@group(0) @binding(4) var<storage, read_write> seen: array<u32>;      // [slots, seen_words] u32
@group(0) @binding(5) var<storage, read_write> counters: array<u32>;  // [slots] u32
@group(0) @binding(6) var<storage, read_write> ids: array<u32>;       // [n] u32
@group(0) @binding(7) var<storage, read_write> probs: array<f32>;     // [rows, v] f32
@group(0) @binding(8) var<uniform> P: SampleParams;

var<workgroup> red_lo: array<vec4<f32>, WG>;
var<workgroup> red_hi: array<vec4<f32>, WG>;
var<workgroup> wg_scan: array<f32, WG>;
var<workgroup> wg_pick: atomic<u32>;
var<workgroup> wg_last: atomic<u32>;   // 1 + the last id with a weight, 0: none

// Row locates a row's data.
struct Row {
    lbase: u32,   // logits offset of the row
    sbase: u32,   // offset of the slot in occ and pen (slot·v)
}

// Keep describes the truncation and temperature of a row.
struct Keep {
    thr: f32,        // kept: p > 0 and p ≥ thr
    cut: f32,        // top-p cutoff (tokens equal to it are adjusted)
    adjusted: f32,   // their new value
    adjust: bool,
    scale: f32,      // largest kept value, after the adjustment
}

// ---- the row's values, recomputed identically in every pass ---------------

// logit is the penalised logit of token i, EXCLUDED when banned or −∞.
fn logit(r: Row, sp: SlotParams, i: u32) -> f32 {
    let x = logits[r.lbase + i];
    var l = x - pen[r.sbase + i];
    let banned = any(vec4<u32>(sp.ban0, sp.ban1, sp.ban2, sp.ban3) == vec4<u32>(i)) ||
                 any(vec4<u32>(sp.ban4, sp.ban5, sp.ban6, sp.ban7) == vec4<u32>(i));
    if (banned || bitcast<u32>(x) == 0xff800000u || l < EXCLUDED) {
        l = EXCLUDED;
    }
    return l;
}

fn flush(p: f32) -> f32 {
    return select(p, 0.0, p < SMALLEST_NORMAL);
}

// prob_of is the softmax probability of a penalised logit l.
fn prob_of(l: f32, mx: f32, s: f32) -> f32 {
    return flush(exp(l - mx) / s);
}

// weight is the unnormalised final weight of a token of probability p.
fn weight(p: f32, k: Keep, sp: SlotParams) -> f32 {
    if (p <= 0.0 || p < k.thr) {
        return 0.0;
    }
    var x = p;
    if (k.adjust && p == k.cut) {
        x = k.adjusted;
    }
    if (sp.temperature == 1.0 || x <= 0.0) {
        return x;
    }
    return flush(pow(x / k.scale, sp.inv_temp));
}

// ---- reductions -----------------------------------------------------------

struct Pair {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

fn reduce_pair(lid: u32, lo: vec4<f32>, hi: vec4<f32>) -> Pair {
    red_lo[lid] = lo;
    red_hi[lid] = hi;
    workgroupBarrier();
    for (var s: u32 = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red_lo[lid] = red_lo[lid] + red_lo[lid + s];
            red_hi[lid] = red_hi[lid] + red_hi[lid + s];
        }
        workgroupBarrier();
    }
    let r = Pair(red_lo[0], red_hi[0]);
    workgroupBarrier();
    return r;
}

// search returns the bit pattern of the largest c with f(c) ≥ goal, where
// f(c) = #{p ≥ c} (counting) or Σ_{p ≥ c} p, both non-increasing in c; 0
// when f(0) < goal. Candidates differ in 3 bits a round, from bit 29 down.
fn search(r: Row, sp: SlotParams, mx: f32, s: f32, counting: bool, goal: f32, lid: u32) -> u32 {
    var prefix = 0u;
    for (var round = 0u; round < 10u; round = round + 1u) {
        let shift = vec4<u32>(27u - 3u * round);
        let c_lo = vec4<u32>(prefix) + (vec4<u32>(0u, 1u, 2u, 3u) << shift);
        let c_hi = vec4<u32>(prefix) + (vec4<u32>(4u, 5u, 6u, 7u) << shift);
        var a_lo = vec4<f32>(0.0);
        var a_hi = vec4<f32>(0.0);
        for (var i = lid; i < P.v; i = i + WG) {
            let p = prob_of(logit(r, sp, i), mx, s);
            let b = vec4<u32>(bitcast<u32>(p));
            let w = vec4<f32>(select(p, 1.0, counting));
            a_lo = a_lo + select(vec4<f32>(0.0), w, b >= c_lo);
            a_hi = a_hi + select(vec4<f32>(0.0), w, b >= c_hi);
        }
        let tot = reduce_pair(lid, a_lo, a_hi);
        var j = 0u;
        for (var q = 1u; q < 4u; q = q + 1u) {
            if (tot.lo[q] >= goal) {
                j = q;
            }
        }
        for (var q = 0u; q < 4u; q = q + 1u) {
            if (tot.hi[q] >= goal) {
                j = 4u + q;
            }
        }
        prefix = prefix + (j << shift.x);
    }
    return prefix;
}

// pick is the draw: the first id of the chunk [lo, hi) whose running sum
// (from start, the weights of the ids before the chunk) exceeds goal, the
// smallest over the workgroup; the last id with a weight when rounding left
// goal at or above every sum. wg_pick must be NONE on entry; it is NONE again
// on return.
fn pick(r: Row, sp: SlotParams, mx: f32, s: f32, k: Keep, lo: u32, hi: u32, start: f32, goal: f32, lid: u32) -> u32 {
    var acc = start;
    for (var i = lo; i < hi; i = i + 1u) {
        let w = weight(prob_of(logit(r, sp, i), mx, s), k, sp);
        acc = acc + w;
        if (w > 0.0 && acc > goal) {
            atomicMin(&wg_pick, i);
            break;
        }
    }
    workgroupBarrier();
    var tok = atomicLoad(&wg_pick);
    if (tok == NONE) {
        tok = atomicLoad(&wg_last) - 1u;
    }
    workgroupBarrier();
    if (lid == 0u) {
        atomicStore(&wg_pick, NONE);
    }
    workgroupBarrier();
    return tok;
}

// ---- the kernel -----------------------------------------------------------

@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = wid.x;
    let v = P.v;
    let bulk = (P.flags & FLAG_BULK) != 0u;
    var slot = P.row_slots[0].x;
    var draws = 1u;   // draws of this workgroup: 1, or in bulk mode P.draws
    var lbase = P.logits_off;
    if (bulk) {
        draws = P.draws;
    } else {
        slot = P.row_slots[row / 4u][row % 4u];
        lbase = lbase + row * v;
    }
    let sp = SP[slot];
    let r = Row(lbase, slot * v);
    let counter = counters[slot];
    let write_probs = (P.flags & FLAG_PROBS) != 0u;
    let prow = P.probs_off + row * v;
    if (lid == 0u) {
        atomicStore(&wg_pick, NONE);
        atomicStore(&wg_last, 0u);
    }

    // 1. Maximum, and whether the row is valid.
    var mx = EXCLUDED;
    var bad = 0.0;
    for (var i = lid; i < v; i = i + WG) {
        let xb = bitcast<u32>(logits[r.lbase + i]);
        if ((xb & 0x7f800000u) == 0x7f800000u && xb != 0xff800000u) {
            bad = 1.0; // NaN or +∞
        }
        let l = logit(r, sp, i);
        if (l > mx) {
            mx = l;
        }
    }
    mx = wg_reduce_max(lid, mx);
    let invalid = wg_reduce_max(lid, bad) > 0.0 || mx <= EXCLUDED;

    var tok = 0u;
    if (sp.temperature <= 0.0) {
        // 2. Greedy: the lowest id holding the maximum.
        for (var i = lid; i < v; i = i + WG) {
            if (logit(r, sp, i) == mx) {
                atomicMin(&wg_pick, i);
                break;
            }
        }
        workgroupBarrier();
        tok = atomicLoad(&wg_pick);
        for (var i = lid; write_probs && i < v; i = i + WG) {
            probs[prow + i] = select(0.0, 1.0, i == tok && !invalid);
        }
        for (var d = 0u; bulk && lid == 0u && d < draws; d = d + 1u) {
            let j = row * draws + d;
            if (j < P.total) {
                ids[P.ids_off + j] = select(tok, NONE, invalid);
            }
        }
    } else {
        // 3. Softmax denominator.
        var part = 0.0;
        for (var i = lid; i < v; i = i + WG) {
            part = part + exp(logit(r, sp, i) - mx);
        }
        let s = wg_reduce_sum(lid, part);
        let pmax = prob_of(mx, mx, s);

        // 4. Thresholds.
        var tk = 0.0;
        if (sp.top_k > 0u && sp.top_k < v) {
            tk = bitcast<f32>(search(r, sp, mx, s, true, f32(sp.top_k), lid));
        }
        var cut = 0.0;
        if (sp.top_p <= 0.0) {
            cut = pmax;
        } else if (sp.top_p < 1.0) {
            cut = bitcast<f32>(search(r, sp, mx, s, false, sp.top_p, lid));
        }

        // 5. The kept mass and the count of cutoff tokens, for the adjustment.
        var k = Keep(max(tk, cut), cut, cut, false, pmax);
        if (sp.top_p > 0.0 && sp.top_p < 1.0) {
            var st = vec4<f32>(0.0);
            for (var i = lid; i < v; i = i + WG) {
                let p = prob_of(logit(r, sp, i), mx, s);
                if (p > 0.0 && p >= k.thr) {
                    st.x = st.x + p;
                    st.y = st.y + select(0.0, 1.0, p == cut);
                }
            }
            let tot = reduce_pair(lid, st, vec4<f32>(0.0)).lo;
            k.adjust = cut > 0.0 && cut >= tk && tot.y > 0.0;
            k.adjusted = max(cut + (sp.top_p - tot.x) / max(tot.y, 1.0), 0.0);
            if (k.adjust && cut == pmax) {
                k.scale = k.adjusted; // every kept token was the maximum
            }
        }

        // 6. Weights summed per chunk of ids, exclusive scan of the chunks.
        let chunk = (v + WG - 1u) / WG;
        let lo = min(lid * chunk, v);
        let hi = min(lo + chunk, v);
        var csum = 0.0;
        var last = 0u;
        for (var i = lo; i < hi; i = i + 1u) {
            let w = weight(prob_of(logit(r, sp, i), mx, s), k, sp);
            csum = csum + w;
            if (w > 0.0) {
                last = i + 1u;
            }
        }
        atomicMax(&wg_last, last);
        wg_scan[lid] = csum;
        workgroupBarrier();
        for (var off = 1u; off < WG; off = off << 1u) {
            var add = 0.0;
            if (lid >= off) {
                add = wg_scan[lid - off];
            }
            workgroupBarrier();
            wg_scan[lid] = wg_scan[lid] + add;
            workgroupBarrier();
        }
        let total = wg_scan[WG - 1u];
        var start = 0.0;
        if (lid > 0u) {
            start = wg_scan[lid - 1u];
        }

        // 7. The draw(s): one per counter.
        for (var d = 0u; d < draws; d = d + 1u) {
            let j = row * draws + d;
            var n = counter;
            if (bulk) {
                n = P.counter_base + j;
            }
            let goal = sample_uniform(sp.seed_lo, sp.seed_hi, n) * total;
            tok = pick(r, sp, mx, s, k, lo, hi, start, goal, lid);
            if (bulk && lid == 0u && j < P.total) {
                ids[P.ids_off + j] = select(tok, NONE, invalid);
            }
        }
        let inv_total = 1.0 / total;
        for (var i = lid; write_probs && i < v; i = i + WG) {
            let w = weight(prob_of(logit(r, sp, i), mx, s), k, sp);
            probs[prow + i] = select(w * inv_total, 0.0, invalid);
        }
    }
    if (bulk) {
        return;
    }

    // 8. The token and the state.
    if (invalid) {
        tok = NONE;
    }
    if (lid == 0u) {
        ids[P.ids_off + row] = tok;
        if (P.chosen_off != NONE && !invalid) {
            ids[P.chosen_off + slot] = tok;
        }
    }
    if ((P.flags & FLAG_UPDATE) != 0u) {
        let sw = slot * P.seen_words;
        for (var i = lid; !invalid && i < v; i = i + WG) {
            let o = occ[r.sbase + i] * sp.decay + select(0.0, 1.0, i == tok);
            occ[r.sbase + i] = o;
            let was = ((seen[sw + i / 32u] >> (i % 32u)) & 1u) == 1u;
            pen[r.sbase + i] = select(0.0, sp.presence + o * sp.frequency, was || i == tok);
        }
        storageBarrier();
        if (lid == 0u && !invalid) {
            seen[sw + tok / 32u] = seen[sw + tok / 32u] | (1u << (tok % 32u));
            counters[slot] = counter + 1u;
        }
    }
}
