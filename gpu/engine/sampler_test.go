package engine

import (
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// The sampler kernel is checked against the CPU reference (cpuref/sample.go,
// itself checked on hand-computed cases): the same kept tokens and final
// probabilities within 1e-6, the same tokens except where a draw falls
// within drawBoundary of a cumulative boundary, a chi-square test of many
// draws, greedy rows equal to model.Argmax.

const (
	probTol      = 1e-6 // |q_gpu − q_cpu| per token
	probRelTol   = 1e-4 // |q_gpu − q_cpu| / q_cpu per token with q_cpu ≥ 1e-30, except an adjusted cutoff
	drawBoundary = 1e-5 // draws closer than this to a boundary may differ
	// Test inputs must keep top-p cumulative sums and top-k neighbours this
	// far (relative for top-k) from a tie: float32 sums over 65536 terms on
	// the GPU differ from the reference's float64 ones by up to ~5e-7.
	inputMargin = 2e-6
)

// TestSamplerPhiloxGPU runs shaders/philox.wgsl on the known-answer vectors
// of Random123 and compares sample_uniform with model.SampleUniform.
func TestSamplerPhiloxGPU(t *testing.T) {
	d := gputest.OpenDevice(t)
	common, err := shaders.Source(shaders.Common, nil)
	if err != nil {
		t.Fatal(err)
	}
	philox, err := shaders.Source("philox.wgsl", nil)
	if err != nil {
		t.Fatal(err)
	}
	src := "const WG: u32 = 64u;\n" + common + philox + `
@group(0) @binding(0) var<storage, read> inp: array<u32>;       // [3, 6] u32 ctr, key
@group(0) @binding(1) var<storage, read_write> out: array<u32>; // [3·4 + 64] u32

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    if (lid < 3u) {
        let b = 6u * lid;
        let r = philox4x32_10(vec4<u32>(inp[b], inp[b + 1u], inp[b + 2u], inp[b + 3u]), vec2<u32>(inp[b + 4u], inp[b + 5u]));
        for (var j = 0u; j < 4u; j++) {
            out[4u * lid + j] = r[j];
        }
    }
    out[12u + lid] = bitcast<u32>(sample_uniform(0x89abcdefu, 0x01234567u, lid * 7919u));
}
`
	k, err := d.Kernel("philox-test", src, "main")
	if err != nil {
		t.Fatal(err)
	}
	kat := []uint32{
		0, 0, 0, 0, 0, 0,
		0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
		0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
	}
	want := []uint32{
		0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8,
		0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
		0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
	}
	for c := uint32(0); c < 64; c++ {
		want = append(want, math.Float32bits(model.SampleUniform(0x0123456789abcdef, c*7919)))
	}
	in, _ := d.NewBufferU32("kat", kat)
	out, _ := d.NewBuffer("out", uint64(4*len(want)))
	r := d.NewRecorder()
	r.Dispatch(k, []gpu.Binding{{Buf: in}, {Buf: out}}, 1, 1, 1)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadU32(out, 0, len(want))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("word %d: GPU %#08x, want %#08x", i, got[i], want[i])
		}
	}
}

// randomLogits returns rows×V normal logits of standard deviation sd.
func randomLogits(rng *rand.Rand, rows, V int, sd float64) []float32 {
	l := make([]float32, rows*V)
	for i := range l {
		l[i] = float32(rng.NormFloat64() * sd)
	}
	return l
}

// checkMargins fails when the logits put a top-p cumulative sum or a top-k
// boundary within inputMargin of a tie, where float32 rounding could
// legitimately change the kept set: the test input must then change.
func checkMargins(t *testing.T, what string, st *cpuref.SamplerState, logits []float32) {
	t.Helper()
	p := st.Params
	if p.IsGreedy() {
		return
	}
	l := make([]float32, len(logits))
	cpuref.PenalisedLogits(l, logits, st.Occ, st.Seen, p)
	probs := make([]float32, len(l))
	cpuref.Softmax(probs, l)
	sorted := append([]float32(nil), probs...)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	if p.TopP > 0 && p.TopP < 1 {
		// Past the k-th value top-k decides alone.
		n := len(sorted)
		if p.TopK > 0 {
			n = min(n, p.TopK)
		}
		var cum float64
		for _, x := range sorted[:n] {
			cum += float64(x)
			if math.Abs(cum-float64(p.TopP)) < inputMargin {
				t.Fatalf("%s: a cumulative sum %v lies within %g of top-p %v: pick other test logits", what, cum, inputMargin, p.TopP)
			}
		}
	}
	if k := p.TopK; k > 0 && k < len(sorted) {
		a, b := float64(sorted[k-1]), float64(sorted[k])
		if a != b && (a-b) < inputMargin*a {
			t.Fatalf("%s: the %d-th and %d-th probabilities %v, %v are within %g (relative): pick other test logits", what, k, k+1, a, b, inputMargin)
		}
	}
}

// rowStats are the largest differences seen between GPU and reference rows.
type rowStats struct {
	maxAbs, maxRel float64 // probabilities
	minDist        float64 // smallest draw-to-boundary distance
	kept           int     // tokens kept, summed over rows
}

// compareRow checks one sampled row: the kept set and the probabilities
// (absolute and relative), and the token under the boundary rule.
func compareRow(t *testing.T, what string, st *cpuref.SamplerState, logits, qGPU []float32, tokGPU uint32, stats *rowStats) {
	t.Helper()
	qCPU, err := st.Distribution(logits)
	if err != nil {
		t.Fatalf("%s: reference: %v", what, err)
	}
	// The smallest kept value is the top-p cutoff's when it was adjusted:
	// cutoff + (top-p − Σ kept)/count cancels, so its float32 value has an
	// absolute (not relative) error of a float32 sum; no relative check.
	smallest := float32(math.Inf(1))
	for _, x := range qCPU {
		if x > 0 {
			smallest = min(smallest, x)
		}
	}
	for i := range qCPU {
		c, g := float64(qCPU[i]), float64(qGPU[i])
		if (c > 0) != (g > 0) {
			t.Fatalf("%s: token %d kept by one side only: GPU q %v, reference q %v", what, i, g, c)
		}
		if c > 0 {
			stats.kept++
		}
		d := math.Abs(c - g)
		if d > probTol {
			t.Fatalf("%s: token %d: GPU q %v, reference q %v (|diff| %g > %g)", what, i, g, c, d, probTol)
		}
		stats.maxAbs = math.Max(stats.maxAbs, d)
		if c >= 1e-30 && qCPU[i] != smallest {
			if d > probRelTol*c {
				t.Fatalf("%s: token %d: GPU q %v, reference q %v (relative diff %g > %g)", what, i, g, c, d/c, probRelTol)
			}
			stats.maxRel = math.Max(stats.maxRel, d/c)
		}
	}
	if st.Params.IsGreedy() {
		want, _ := st.Choose(logits)
		if int(tokGPU) != want {
			t.Fatalf("%s: greedy token %d, reference %d", what, tokGPU, want)
		}
		return
	}
	u := model.SampleUniform(st.Params.Seed, st.Counter)
	dist := cpuref.BoundaryDistance(qCPU, u)
	want := cpuref.Draw(qCPU, u)
	if dist > drawBoundary && int(tokGPU) != want {
		t.Fatalf("%s: GPU drew %d, reference %d (u %v, %g from the nearest boundary)", what, tokGPU, want, u, dist)
	}
	stats.minDist = math.Min(stats.minDist, dist)
}

type samplerCase struct {
	name     string
	p        model.Sampling
	quantise bool // logits rounded to multiples of 1/2: many exact ties
}

func samplerCases(t *testing.T) []samplerCase {
	preset := func(name string, seed uint64) model.Sampling {
		p, err := model.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		p.Seed = seed
		return p
	}
	return []samplerCase{
		{"chat", preset("chat", 1), false},
		{"creative", preset("creative", 2), false},
		{"precise", preset("precise", 3), false},
		{"greedy", preset("greedy", 4), false},
		{"top-k 40 top-p 0.9 T 0.8 penalties", model.Sampling{Temperature: 0.8, TopP: 0.9, TopK: 40, PresencePenalty: 0.3, FrequencyPenalty: 0.7, PenaltyDecay: 0.9, Seed: 5, Ban: []int{3, 5}}, false},
		{"top-k 5 T 1.3", model.Sampling{Temperature: 1.3, TopP: 1, TopK: 5, Seed: 6}, false},
		{"top-p 0 (maximum, ties kept)", model.Sampling{Temperature: 1, TopP: 0, Seed: 7}, false},
		{"no truncation T 0.7", model.Sampling{Temperature: 0.7, TopP: 1, Seed: 8}, false},
		{"presence 1.5, decay 0 (counts vanish, seen stays)", model.Sampling{Temperature: 1, TopP: 1, PresencePenalty: 1.5, FrequencyPenalty: 1, PenaltyDecay: 0, Seed: 10}, false},
		{"ties: top-k 12 top-p 0.6 T 0.9, logits in steps of 1/2", model.Sampling{Temperature: 0.9, TopP: 0.6, TopK: 12, Seed: 9}, true},
	}
}

// TestSamplerMatchesReference samples one row per parameter set for three
// chained steps (so the penalties act) at V = 1000 and 65536 and compares
// every row with the reference.
func TestSamplerMatchesReference(t *testing.T) {
	d := gputest.OpenDevice(t)
	for _, V := range []int{1000, 65536} {
		t.Run(fmt.Sprint("V=", V), func(t *testing.T) {
			start := time.Now()
			cases := samplerCases(t)
			rows := len(cases)
			s, err := NewSampler(d, V, rows+1, rows)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
			refs := make([]*cpuref.SamplerState, rows)
			slots := make([]int, rows)
			for i, c := range cases {
				slots[i] = rows - i // not the row order, and slot 0 unused
				if err := s.Configure(slots[i], c.p); err != nil {
					t.Fatal(err)
				}
				if refs[i], err = cpuref.NewSamplerState(c.p, V); err != nil {
					t.Fatal(err)
				}
			}
			rng := rand.New(rand.NewSource(int64(V)))
			logitsBuf, _ := d.NewBuffer("logits", uint64(4*rows*V))
			ids, _ := d.NewBuffer("ids", uint64(4*(rows+3)))
			probs, _ := d.NewBuffer("probs", uint64(4*rows*V))
			stats := rowStats{minDist: math.Inf(1)}
			for step := 0; step < 3; step++ {
				logits := randomLogits(rng, rows, V, 3)
				for i := 0; i < rows; i++ {
					row := logits[i*V : (i+1)*V]
					if cases[i].quantise {
						for j := range row {
							row[j] = float32(math.Round(float64(row[j])*2) / 2)
						}
					}
					m := model.Argmax(row)
					row[m/2] = row[m] // a tie at the maximum, at a lower id
					checkMargins(t, fmt.Sprintf("step %d %s", step, cases[i].name), refs[i], row)
				}
				if err := d.WriteF32(logitsBuf, 0, logits); err != nil {
					t.Fatal(err)
				}
				r := d.NewRecorder()
				if err := s.RecordWithProbs(r, logitsBuf, 0, slots, ids, 3, probs, 0); err != nil {
					t.Fatal(err)
				}
				if err := r.Submit(); err != nil {
					t.Fatal(err)
				}
				q, err := d.ReadF32(probs, 0, rows*V)
				if err != nil {
					t.Fatal(err)
				}
				toks, err := d.ReadU32(ids, 12, rows)
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range cases {
					row := logits[i*V : (i+1)*V]
					what := fmt.Sprintf("step %d, %s", step, c.name)
					compareRow(t, what, refs[i], row, q[i*V:(i+1)*V], toks[i], &stats)
					if c.p.IsGreedy() && int(toks[i]) != model.Argmax(row) {
						t.Fatalf("%s: greedy token %d, model.Argmax %d", what, toks[i], model.Argmax(row))
					}
					refs[i].Observe(int(toks[i]))
				}
			}
			t.Logf("V=%d: %d rows × 3 steps agree: %d kept tokens, largest |Δq| %.3g, relative %.3g; smallest draw-to-boundary distance %.3g; %v",
				V, rows, stats.kept, stats.maxAbs, stats.maxRel, stats.minDist, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestSamplerChain runs 200 chained steps recorded in one submission for
// three sequences (chat and creative with penalties, and greedy), the state
// staying on the device, and replays them on the CPU: every token equals
// the reference's unless its draw lies within drawBoundary of a boundary
// (then the reference follows the GPU's token). The final states agree.
func TestSamplerChain(t *testing.T) {
	d := gputest.OpenDevice(t)
	const V, steps = 512, 200
	start := time.Now()
	chat, _ := model.Preset("chat")
	chat.Seed = 0xfeedface12345678
	creative, _ := model.Preset("creative")
	creative.Seed = 99
	greedy, _ := model.Preset("greedy")
	params := []model.Sampling{chat, creative, greedy}
	slots := []int{2, 0, 1}
	s, err := NewSampler(d, V, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	refs := make([]*cpuref.SamplerState, 3)
	for i, p := range params {
		if err := s.Configure(slots[i], p); err != nil {
			t.Fatal(err)
		}
		refs[i], _ = cpuref.NewSamplerState(p, V)
	}
	rng := rand.New(rand.NewSource(7))
	logits := randomLogits(rng, steps*3, V, 2)
	logitsBuf, _ := d.NewBufferF32("logits", logits)
	ids, _ := d.NewBuffer("ids", 4*steps*3)
	r := d.NewRecorder()
	for step := 0; step < steps; step++ {
		if err := s.Record(r, logitsBuf, step*3*V, slots, ids, step*3); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	toks, err := d.ReadU32(ids, 0, steps*3)
	if err != nil {
		t.Fatal(err)
	}
	gpuTime := time.Since(start)
	near, nearDiffer, distinct := 0, 0, map[int]bool{}
	for step := 0; step < steps; step++ {
		for i, ref := range refs {
			row := logits[(step*3+i)*V : (step*3+i+1)*V]
			tok := int(toks[step*3+i])
			what := fmt.Sprintf("step %d, sequence %d (%v)", step, i, ref.Params)
			if tok < 0 || tok >= V {
				t.Fatalf("%s: GPU token %d outside the vocabulary", what, tok)
			}
			if ref.Params.IsGreedy() {
				if want := model.Argmax(row); tok != want {
					t.Fatalf("%s: greedy token %d, model.Argmax %d", what, tok, want)
				}
			} else {
				q, err := ref.Distribution(row)
				if err != nil {
					t.Fatal(err)
				}
				u := model.SampleUniform(ref.Params.Seed, ref.Counter)
				want := cpuref.Draw(q, u)
				dist := cpuref.BoundaryDistance(q, u)
				if dist <= drawBoundary {
					near++
					if tok != want {
						nearDiffer++
					}
				} else if tok != want {
					t.Fatalf("%s: GPU drew %d, reference %d (u %v, %g from the nearest boundary)", what, tok, want, u, dist)
				}
				distinct[tok] = true
			}
			ref.Observe(tok)
		}
	}
	// The final states.
	for i, ref := range refs {
		st, err := s.ReadState(slots[i])
		if err != nil {
			t.Fatal(err)
		}
		if st.Counter != steps {
			t.Errorf("sequence %d: counter %d, want %d", i, st.Counter, steps)
		}
		for tok := 0; tok < V; tok++ {
			if st.Seen[tok] != ref.Seen[tok] {
				t.Fatalf("sequence %d: token %d seen on the GPU %v, reference %v", i, tok, st.Seen[tok], ref.Seen[tok])
			}
			if a, b := float64(st.Occ[tok]), float64(ref.Occ[tok]); math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(b)) {
				t.Fatalf("sequence %d: token %d count %v on the GPU, reference %v", i, tok, a, b)
			}
		}
	}
	if len(distinct) < 20 {
		t.Errorf("only %d distinct sampled tokens in %d steps: the penalties or the draw are not varying", len(distinct), steps)
	}
	t.Logf("%d steps × 3 sequences agree (%d draws within %g of a boundary exempt, %d of them different); %d distinct tokens; GPU %v, total %v",
		steps, near, drawBoundary, nearDiffer, len(distinct), gpuTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// chiSquareCritical is the upper α = 0.001 point of the chi-square
// distribution with df degrees of freedom (Wilson–Hilferty; z = 3.0902).
func chiSquareCritical(df int) float64 {
	k := float64(df)
	c := 1 - 2/(9*k) + 3.0902*math.Sqrt(2/(9*k))
	return k * c * c * c
}

// TestSamplerChiSquare draws 100000 tokens on the GPU from one row (counters
// 0..99999) and checks their frequencies against the reference
// distribution at significance 0.001, and each draw against the reference's
// under the boundary rule.
func TestSamplerChiSquare(t *testing.T) {
	d := gputest.OpenDevice(t)
	const V, n = 48, 100000
	start := time.Now()
	p := model.Sampling{Temperature: 0.7, TopP: 0.95, TopK: 20, Seed: 2024, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0.99}
	s, err := NewSampler(d, V, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := s.Configure(0, p); err != nil {
		t.Fatal(err)
	}
	ref, _ := cpuref.NewSamplerState(p, V)
	rng := rand.New(rand.NewSource(11))
	logits := randomLogits(rng, 1, V, 1.5)
	logitsBuf, _ := d.NewBufferF32("logits", logits)
	// Two sampled steps first, so the penalties are part of the distribution.
	ids, _ := d.NewBuffer("ids", 4*(n+2))
	r := d.NewRecorder()
	for step := 0; step < 2; step++ {
		if err := s.Record(r, logitsBuf, 0, []int{0}, ids, step); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordDraws(r, logitsBuf, 0, 0, 0, n, ids, 2); err != nil {
		t.Fatal(err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	toks, err := d.ReadU32(ids, 0, n+2)
	if err != nil {
		t.Fatal(err)
	}
	gpuTime := time.Since(start)
	ref.Observe(int(toks[0]))
	ref.Observe(int(toks[1]))
	checkMargins(t, "chi-square logits", ref, logits)
	q, err := ref.Distribution(logits)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, V)
	near, nearDiffer := 0, 0
	for j, tok := range toks[2:] {
		if int(tok) >= V || q[tok] == 0 {
			t.Fatalf("draw %d: token %d, which the reference gives probability 0", j, tok)
		}
		counts[tok]++
		u := model.SampleUniform(p.Seed, uint32(j))
		if want := cpuref.Draw(q, u); cpuref.BoundaryDistance(q, u) <= drawBoundary {
			near++
			if int(tok) != want {
				nearDiffer++
			}
		} else if int(tok) != want {
			t.Fatalf("draw %d: GPU %d, reference %d (u %v)", j, tok, want, u)
		}
	}
	// Bins: tokens with expected count ≥ 5; the rest pooled into one.
	var chi, poolE float64
	poolO, bins, kept := 0, 0, 0
	for tok, x := range q {
		if x == 0 {
			continue
		}
		kept++
		e := float64(x) * n
		if e < 5 {
			poolE += e
			poolO += counts[tok]
			continue
		}
		o := float64(counts[tok])
		chi += (o - e) * (o - e) / e
		bins++
	}
	if poolE > 0 {
		chi += (float64(poolO) - poolE) * (float64(poolO) - poolE) / poolE
		bins++
	}
	if bins < 5 {
		t.Fatalf("only %d bins: the test distribution is too narrow", bins)
	}
	crit := chiSquareCritical(bins - 1)
	if chi > crit {
		t.Errorf("chi-square %.2f over %d bins (df %d) exceeds the 0.001 critical value %.2f", chi, bins, bins-1, crit)
	}
	t.Logf("%d draws over %d kept tokens: chi-square %.2f, df %d, critical (α = 0.001) %.2f; %d draws within %g of a boundary, %d of them different from the reference; GPU %v, total %v",
		n, kept, chi, bins-1, crit, near, drawBoundary, nearDiffer, gpuTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestSamplerCopySlot forks a sequence on the device: after CopySlot the two
// slots hold the same state and draw the same tokens from the same logits.
func TestSamplerCopySlot(t *testing.T) {
	d := gputest.OpenDevice(t)
	const V = 300
	chat, _ := model.Preset("chat")
	chat.Seed = 5
	s, err := NewSampler(d, V, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := s.Configure(0, chat); err != nil {
		t.Fatal(err)
	}
	if err := s.Configure(2, model.Sampling{Temperature: 1, TopP: 1, Seed: 77}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	logits := randomLogits(rng, 9, V, 2)
	// Step k's row at k·V for the first 4 steps, then twice (one per slot)
	// at (4 + 2(k−4))·V.
	var layout []float32
	for step := 0; step < 9; step++ {
		row := logits[step*V : (step+1)*V]
		layout = append(layout, row...)
		if step >= 4 {
			layout = append(layout, row...)
		}
	}
	logitsBuf, _ := d.NewBufferF32("logits", layout)
	ids, _ := d.NewBuffer("ids", 4*16)
	r := d.NewRecorder()
	for step := 0; step < 4; step++ {
		if err := s.Record(r, logitsBuf, step*V, []int{0}, ids, step); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CopySlot(r, 0, 2); err != nil {
		t.Fatal(err)
	}
	for step := 4; step < 9; step++ {
		if err := s.Record(r, logitsBuf, (2*step-4)*V, []int{0, 2}, ids, 2*step-4); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	toks, _ := d.ReadU32(ids, 0, 14)
	for j := 4; j < 14; j += 2 {
		if toks[j] != toks[j+1] {
			t.Fatalf("after the copy, step %d: slot 0 drew %d, its copy %d", 4+(j-4)/2, toks[j], toks[j+1])
		}
	}
	a, _ := s.ReadState(0)
	b, _ := s.ReadState(2)
	if a.Counter != 9 || b.Counter != 9 {
		t.Errorf("counters %d and %d, want 9", a.Counter, b.Counter)
	}
	for i := range a.Occ {
		if a.Occ[i] != b.Occ[i] || a.Seen[i] != b.Seen[i] {
			t.Fatalf("token %d: slot 0 (%v, %v), copy (%v, %v)", i, a.Occ[i], a.Seen[i], b.Occ[i], b.Seen[i])
		}
	}
	// The reference replays slot 0 and agrees with the copy's tokens too.
	ref, _ := cpuref.NewSamplerState(chat, V)
	for step := 0; step < 9; step++ {
		j := step
		if step >= 4 {
			j = 2*step - 3 // the copy's id
		}
		row := logits[step*V : (step+1)*V]
		q, _ := ref.Distribution(row)
		u := model.SampleUniform(chat.Seed, ref.Counter)
		if want := cpuref.Draw(q, u); cpuref.BoundaryDistance(q, u) > drawBoundary && int(toks[j]) != want {
			t.Fatalf("step %d: GPU %d, reference %d", step, toks[j], want)
		}
		ref.Observe(int(toks[j]))
	}
}

// TestSamplerBansAndInvalidRows: a NaN or +Inf logit, or every id banned,
// gives SamplerInvalidToken, an all-zero distribution and no state change;
// −∞ and banned ids get probability 0 (values by hand: the other ids share
// equal logits).
func TestSamplerBansAndInvalidRows(t *testing.T) {
	d := gputest.OpenDevice(t)
	const V = 8
	const rows = 6
	s, err := NewSampler(d, V, rows, rows)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	params := []model.Sampling{
		{Temperature: 1, TopP: 1, Seed: 1},                            // NaN logit
		{Temperature: 1, TopP: 1, Seed: 1},                            // +Inf logit
		{Temperature: 1, TopP: 1, Seed: 1},                            // −∞ at id 3
		{Temperature: 1, TopP: 1, Ban: []int{0, 1, 2, 3, 4, 5, 6, 7}}, // all banned
		{Temperature: 1, TopP: 1, Seed: 3, Ban: []int{2, 5}},          // the two maxima banned
		{Ban: []int{2, 5}},                                            // greedy, the same
	}
	for slot, p := range params {
		if err := s.Configure(slot, p); err != nil {
			t.Fatal(err)
		}
	}
	logits := make([]float32, rows*V)
	logits[1] = float32(math.NaN())
	logits[V+2] = float32(math.Inf(1))
	logits[2*V+3] = float32(math.Inf(-1))
	for _, row := range []int{4, 5} {
		logits[row*V+2], logits[row*V+5] = 9, 9
	}
	buf, _ := d.NewBufferF32("logits", logits)
	ids, _ := d.NewBuffer("ids", 4*rows)
	probs, _ := d.NewBuffer("probs", 4*rows*V)
	r := d.NewRecorder()
	if err := s.RecordWithProbs(r, buf, 0, []int{0, 1, 2, 3, 4, 5}, ids, 0, probs, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	toks, _ := d.ReadU32(ids, 0, rows)
	q, _ := d.ReadF32(probs, 0, rows*V)
	sixth, seventh := 1.0/6, 1.0/7
	wantQ := [][]float64{
		{0, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 0, 0, 0, 0},
		{seventh, seventh, seventh, 0, seventh, seventh, seventh, seventh},
		{0, 0, 0, 0, 0, 0, 0, 0},
		{sixth, sixth, 0, sixth, sixth, 0, sixth, sixth},
		{1, 0, 0, 0, 0, 0, 0, 0}, // greedy: lowest id among the equal rest
	}
	for row, want := range wantQ {
		invalid := row == 0 || row == 1 || row == 3
		if (toks[row] == SamplerInvalidToken) != invalid {
			t.Errorf("row %d: token %#x, want invalid %v", row, toks[row], invalid)
		}
		if !invalid && want[toks[row]] == 0 {
			t.Errorf("row %d: drew %d, which has probability 0", row, toks[row])
		}
		for i, w := range want {
			if g := float64(q[row*V+i]); math.Abs(g-w) > 1e-7 {
				t.Errorf("row %d token %d: q %v, want %v", row, i, g, w)
			}
		}
		st, _ := s.ReadState(row)
		if wantCounter := map[bool]uint32{true: 0, false: 1}[invalid]; st.Counter != wantCounter {
			t.Errorf("row %d: counter %d, want %d", row, st.Counter, wantCounter)
		}
	}
}

// TestSamplerArgumentErrors: bad arguments are refused with errors naming them.
func TestSamplerArgumentErrors(t *testing.T) {
	d := gputest.OpenDevice(t)
	if _, err := NewSampler(d, 0, 1, 1); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("vocabulary 0: %v", err)
	}
	if _, err := NewSampler(d, 10, 0, 1); err == nil || !strings.Contains(err.Error(), "slots") {
		t.Errorf("0 slots: %v", err)
	}
	if _, err := NewSampler(d, 10, 1, MaxSamplerRows+1); err == nil || !strings.Contains(err.Error(), "maxRows") {
		t.Errorf("too many rows: %v", err)
	}
	s, err := NewSampler(d, 10, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	logits, _ := d.NewBuffer("logits", 4*20)
	ids, _ := d.NewBuffer("ids", 8)
	r := d.NewRecorder()
	cases := []struct {
		err  error
		want string
	}{
		{s.Configure(2, model.Sampling{}), "slot 2"},
		{s.Configure(0, model.Sampling{TopP: 3}), "top-p"},
		{s.Record(r, logits, 0, []int{0, 0}, ids, 0), "both use slot 0"},
		{s.Record(r, logits, 0, []int{0, 1, 0}, ids, 0), "3 rows"},
		{s.Record(r, logits, 0, nil, ids, 0), "0 rows"},
		{s.Record(r, logits, 0, []int{5}, ids, 0), "slot 5"},
		{s.Record(r, logits, 11, []int{0}, ids, 0), "logits [11, 21)"},
		{s.Record(r, logits, 0, []int{0, 1}, ids, 1), "ids [1, 3)"},
		{s.Record(r, nil, 0, []int{0}, ids, 0), "nil logits"},
		{s.RecordWithProbs(r, logits, 0, []int{0}, ids, 0, logits, 15), "probs [15, 25)"},
		{s.RecordDraws(r, logits, 0, 0, 0, 0, ids, 0), "0 draws"},
		{s.RecordDraws(r, logits, 0, 0, 0, 3, ids, 0), "ids [0, 3)"},
		{s.CopySlot(r, 0, 2), "destination slot 2"},
	}
	for i, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("case %d: error %v, want one containing %q", i, c.err, c.want)
		}
	}
	if _, err := s.ReadState(-1); err == nil {
		t.Error("ReadState(-1) accepted")
	}
}
