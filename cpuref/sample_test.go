package cpuref

import (
	"math"
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// The expected values in this file are worked out by hand from the rules of
// spec/tokenizer.md §6 (written next to each case).

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// wantVec fails at the first element of got farther than tol from want.
func wantVec(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !near(float64(got[i]), want[i], tol) {
			t.Fatalf("%s: [%d] = %v, want %v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

func newState(t *testing.T, p model.Sampling, vocab int) *SamplerState {
	t.Helper()
	s, err := NewSamplerState(p, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSamplerPenaltiesDecay follows the counts over several steps with
// presence 0.5, frequency 0.5, decay 0.5 (exact binary values).
func TestSamplerPenaltiesDecay(t *testing.T) {
	s := newState(t, model.Sampling{Temperature: 1, TopP: 1, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0.5}, 5)
	logits := []float32{1, 2, 3, 4, 5}
	l := make([]float32, 5)
	// Nothing seen: no penalty.
	PenalisedLogits(l, logits, s.Occ, s.Seen, s.Params)
	wantVec(t, "step 0", l, []float64{1, 2, 3, 4, 5}, 0)

	s.Observe(1) // occ = [0 1 0 0 0]
	PenalisedLogits(l, logits, s.Occ, s.Seen, s.Params)
	// l1 = 2 − (0.5 + 1·0.5) = 1
	wantVec(t, "after 1", l, []float64{1, 1, 3, 4, 5}, 0)

	s.Observe(1) // occ = [0 0.5+1 0 0 0] = [0 1.5 0 0 0]
	PenalisedLogits(l, logits, s.Occ, s.Seen, s.Params)
	// l1 = 2 − (0.5 + 1.5·0.5) = 0.75
	wantVec(t, "after 1 1", l, []float64{1, 0.75, 3, 4, 5}, 0)

	s.Observe(3) // occ = [0 0.75 0 1 0]
	wantVec(t, "occ after 1 1 3", s.Occ, []float64{0, 0.75, 0, 1, 0}, 0)
	PenalisedLogits(l, logits, s.Occ, s.Seen, s.Params)
	// l1 = 2 − (0.5 + 0.375) = 1.125, l3 = 4 − (0.5 + 0.5) = 3
	wantVec(t, "after 1 1 3", l, []float64{1, 1.125, 3, 3, 5}, 0)
	if s.Counter != 3 {
		t.Errorf("counter %d, want 3", s.Counter)
	}

	// Decay 0: the counts vanish after the next token, the presence penalty
	// stays (the seen flag survives).
	z := newState(t, model.Sampling{Temperature: 1, TopP: 1, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0}, 5)
	z.Observe(1)
	z.Observe(2) // occ = [0 0 1 0 0], token 1 still seen
	PenalisedLogits(l, logits, z.Occ, z.Seen, z.Params)
	// l1 = 2 − 0.5, l2 = 3 − (0.5 + 0.5)
	wantVec(t, "decay 0", l, []float64{1, 1.5, 2, 4, 5}, 0)
}

// TestSamplerSoftmax: logits ln 1, ln 2, ln 3, ln 4 give 0.1, 0.2, 0.3, 0.4;
// −∞ gives 0, and a value below 2⁻¹²⁶ is flushed to 0.
func TestSamplerSoftmax(t *testing.T) {
	l := []float32{0, float32(math.Log(2)), float32(math.Log(3)), float32(math.Log(4)), float32(math.Inf(-1)), -200}
	p := make([]float32, len(l))
	Softmax(p, l)
	wantVec(t, "softmax", p, []float64{0.1, 0.2, 0.3, 0.4, 0, 0}, 1e-7)
}

// TestSamplerTopP covers the cutoff search and the adjustment.
func TestSamplerTopP(t *testing.T) {
	cases := []struct {
		p    []float32
		topP float32
		cut  float32
		want []float64 // after Truncate
	}{
		// Sorted 0.4 0.3 0.2 0.1, cumsum 0.4 0.7: first ≥ 0.5 is 0.3. Kept
		// 0.4+0.3 = 0.7; the cutoff token gets 0.3 + (0.5 − 0.7)/1 = 0.1.
		{[]float32{0.1, 0.2, 0.3, 0.4}, 0.5, 0.3, []float64{0, 0, 0.1, 0.4}},
		// cumsum[0] = 0.4 reaches 0.4: cutoff 0.4, kept mass already 0.4.
		{[]float32{0.1, 0.2, 0.3, 0.4}, 0.4, 0.4, []float64{0, 0, 0, 0.4}},
		// Ties at the cutoff: 0.3 0.3 (cumsum 0.3 0.6 ≥ 0.5), both kept and
		// both adjusted: 0.3 + (0.5 − 0.6)/2 = 0.25.
		{[]float32{0.3, 0.2, 0.3, 0.2}, 0.5, 0.3, []float64{0.25, 0, 0.25, 0}},
		// cumsum 0.3 0.6 0.8 ≥ 0.7 at a 0.2: both 0.2s kept, each
		// 0.2 + (0.7 − 1.0)/2 = 0.05.
		{[]float32{0.3, 0.2, 0.3, 0.2}, 0.7, 0.2, []float64{0.3, 0.05, 0.3, 0.05}},
		// top-p 0 keeps the maximum with its ties, unadjusted.
		{[]float32{0.3, 0.2, 0.3, 0.2}, 0, 0.3, []float64{0.3, 0, 0.3, 0}},
		// top-p 1 keeps everything.
		{[]float32{0.1, 0.2, 0.3, 0.4}, 1, 0, []float64{0.1, 0.2, 0.3, 0.4}},
	}
	for i, c := range cases {
		cut := TopPCutoff(c.p, c.topP)
		if cut != c.cut {
			t.Errorf("case %d: cutoff %v, want %v", i, cut, c.cut)
		}
		p := append([]float32(nil), c.p...)
		Truncate(p, 0, cut, c.topP)
		wantVec(t, "top-p truncate", p, c.want, 1e-7)
	}
}

// TestSamplerTopK covers the k-th largest threshold (ties kept) and its
// interplay with top-p.
func TestSamplerTopK(t *testing.T) {
	p := []float32{0.1, 0.2, 0.3, 0.4}
	ties := []float32{0.3, 0.2, 0.3, 0.2}
	cases := []struct {
		p    []float32
		k    int
		topP float32
		want []float64
	}{
		{p, 2, 1, []float64{0, 0, 0.3, 0.4}},
		{p, 4, 1, []float64{0.1, 0.2, 0.3, 0.4}},
		{p, 0, 1, []float64{0.1, 0.2, 0.3, 0.4}},
		// The 3rd largest of 0.3 0.3 0.2 0.2 is 0.2: the tie keeps all four.
		{ties, 3, 1, []float64{0.3, 0.2, 0.3, 0.2}},
		// k = 1 keeps both tied maxima.
		{ties, 1, 1, []float64{0.3, 0, 0.3, 0}},
		// top-k tighter than top-p (k = 1 keeps 0.4 > cutoff 0.3): the
		// cutoff token is gone, nothing is adjusted.
		{p, 1, 0.5, []float64{0, 0, 0, 0.4}},
		// top-p tighter (k = 3 keeps ≥ 0.2, cutoff 0.3): as top-p alone.
		{p, 3, 0.5, []float64{0, 0, 0.1, 0.4}},
		// Equal (k = 2 keeps ≥ 0.3 = cutoff): adjusted as top-p alone.
		{p, 2, 0.5, []float64{0, 0, 0.1, 0.4}},
	}
	for i, c := range cases {
		got := append([]float32(nil), c.p...)
		Truncate(got, TopKThreshold(c.p, c.k), TopPCutoff(c.p, c.topP), c.topP)
		if !vecNear(got, c.want, 1e-7) {
			t.Errorf("case %d (k %d, top-p %v): %v, want %v", i, c.k, c.topP, got, c.want)
		}
	}
}

func vecNear(got []float32, want []float64, tol float64) bool {
	for i := range want {
		if !near(float64(got[i]), want[i], tol) {
			return false
		}
	}
	return len(got) == len(want)
}

// TestSamplerTemperature: kept 0.1 and 0.4 (normalised 0.2, 0.8); T = 0.5
// squares them (0.04 : 0.64 = 1 : 16), T = 2 takes square roots (1 : 2).
func TestSamplerTemperature(t *testing.T) {
	for _, c := range []struct {
		temp float32
		want []float64
	}{
		{0.5, []float64{0, 0, 1.0 / 17, 16.0 / 17}},
		{2, []float64{0, 0, 1.0 / 3, 2.0 / 3}},
		{1, []float64{0, 0, 0.2, 0.8}},
	} {
		p := []float32{0, 0, 0.1, 0.4}
		ApplyTemperature(p, c.temp)
		Normalise(p)
		wantVec(t, "temperature", p, c.want, 1e-7)
	}
}

// TestSamplerDistribution runs the whole chain on logits ln(1..4):
// probabilities 0.1 0.2 0.3 0.4, top-p 0.5 keeps 0.4 and 0.3 → 0.1, T = 0.5
// squares (1 : 16).
func TestSamplerDistribution(t *testing.T) {
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(3)), float32(math.Log(4))}
	s := newState(t, model.Sampling{Temperature: 0.5, TopP: 0.5, PenaltyDecay: 1}, 4)
	q, err := s.Distribution(logits)
	if err != nil {
		t.Fatal(err)
	}
	wantVec(t, "distribution", q, []float64{0, 0, 1.0 / 17, 16.0 / 17}, 1e-6)

	// Banning id 3 leaves 1/6, 2/6, 3/6; top-p 0.5 then has cutoff 3/6 and
	// keeps only id 2.
	s = newState(t, model.Sampling{Temperature: 1, TopP: 0.5, Ban: []int{3}}, 4)
	q, err = s.Distribution(logits)
	if err != nil {
		t.Fatal(err)
	}
	wantVec(t, "banned", q, []float64{0, 0, 1, 0}, 1e-7)
	s.Params.TopP = 1
	q, _ = s.Distribution(logits)
	wantVec(t, "banned, no top-p", q, []float64{1.0 / 6, 2.0 / 6, 3.0 / 6, 0}, 1e-7)
}

// TestSamplerGreedy: argmax of the penalised logits, lowest id on ties,
// banned ids excluded; the distribution is one-hot.
func TestSamplerGreedy(t *testing.T) {
	s := newState(t, model.Sampling{PresencePenalty: 0.5, PenaltyDecay: 1}, 4)
	logits := []float32{1, 3, 3, 2}
	got, err := s.Sample(logits)
	if err != nil || got != 1 {
		t.Fatalf("step 0: %d %v, want 1 (tie between ids 1 and 2 goes to the lower)", got, err)
	}
	got, _ = s.Sample(logits) // penalised: [1, 2.5, 3, 2]
	if got != 2 {
		t.Fatalf("step 1: %d, want 2 (id 1 penalised to 2.5)", got)
	}
	got, _ = s.Sample(logits) // [1, 2.5, 2.5, 2]: tie → 1
	if got != 1 {
		t.Fatalf("step 2: %d, want 1 (ids 1 and 2 both at 2.5)", got)
	}
	q, _ := s.Distribution(logits)
	wantVec(t, "greedy distribution", q, []float64{0, 1, 0, 0}, 0)

	b := newState(t, model.Sampling{Ban: []int{1, 2}}, 4)
	if got, _ := b.Sample(logits); got != 3 {
		t.Errorf("greedy with ids 1, 2 banned: %d, want 3", got)
	}
}

// TestSamplerDraw checks the inverse CDF in token-id order on
// q = 0.25 0 0.5 0.25 (boundaries 0.25, 0.75, 1).
func TestSamplerDraw(t *testing.T) {
	q := []float32{0.25, 0, 0.5, 0.25}
	for _, c := range []struct {
		u    float32
		want int
		dist float64
	}{
		{0, 0, 0}, {0.2, 0, 0.05}, {0.25, 2, 0}, {0.3, 2, 0.05}, {0.74, 2, 0.01},
		{0.75, 3, 0}, {0.99, 3, 0.01}, {1, 3, 0},
	} {
		if got := Draw(q, c.u); got != c.want {
			t.Errorf("Draw(u=%v) = %d, want %d", c.u, got, c.want)
		}
		if got := BoundaryDistance(q, c.u); !near(got, c.dist, 1e-7) {
			t.Errorf("BoundaryDistance(u=%v) = %v, want %v", c.u, got, c.dist)
		}
	}
}

// TestSamplerSampleUsesCounter: with logits ln(1..4), top-p 0.5 and T = 1 the
// distribution is 0.2 (id 2) / 0.8 (id 3); step n draws with
// u = SampleUniform(seed, n), so id 2 exactly when u < 0.2.
func TestSamplerSampleUsesCounter(t *testing.T) {
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(3)), float32(math.Log(4))}
	const seed = 12345
	s := newState(t, model.Sampling{Temperature: 1, TopP: 0.5, PenaltyDecay: 1, Seed: seed}, 4)
	twos := 0
	for n := uint32(0); n < 200; n++ {
		u := model.SampleUniform(seed, n)
		want := 3
		if u < 0.2 {
			want = 2
			twos++
		}
		// No penalties: the distribution never changes.
		got, err := s.Sample(logits)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("step %d (u %v): %d, want %d", n, u, got, want)
		}
	}
	if twos == 0 || twos == 200 {
		t.Errorf("id 2 drawn %d times of 200: the counter is not advancing", twos)
	}
}

// TestSamplerErrors: NaN and +Inf logits, all ids banned and a wrong length
// are errors.
func TestSamplerErrors(t *testing.T) {
	s := newState(t, model.Sampling{Temperature: 1, TopP: 1}, 3)
	for _, c := range []struct {
		logits []float32
		want   string
	}{
		{[]float32{0, float32(math.NaN()), 1}, "logit 1 is NaN"},
		{[]float32{0, 1, float32(math.Inf(1))}, "logit 2 is +Inf"},
		{[]float32{0, 1}, "2 logits"},
	} {
		if _, err := s.Sample(c.logits); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Sample(%v): %v, want an error with %q", c.logits, err, c.want)
		}
	}
	all := newState(t, model.Sampling{Ban: []int{0, 1, 2}}, 3)
	if _, err := all.Sample([]float32{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "no finite logit") {
		t.Errorf("all banned: %v", err)
	}
	if _, err := NewSamplerState(model.Sampling{TopP: 2}, 3); err == nil {
		t.Error("invalid settings accepted")
	}
}
