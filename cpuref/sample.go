package cpuref

import (
	"fmt"
	"math"
	"slices"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file is the reference of BlinkDL's RWKV-7 sampler (model.Sampling,
// spec/tokenizer.md §6), one step per function, in the order they run:
//
//	PenalisedLogits → Softmax → TopKThreshold, TopPCutoff → Truncate →
//	ApplyTemperature → Normalise → Draw (u = model.SampleUniform) → Observe
//
// Probabilities are float32 as in the demo; sums (softmax denominator,
// cumulative sums, kept mass) accumulate in float64, so each result is the
// float32 rounding of the exact value. The GPU kernel (shaders/sample.wgsl)
// computes the same quantities in float32 without sorting; both flush
// probabilities below the smallest normal float32 (2⁻¹²⁶) to zero.

// SamplerState is one sequence's sampler: its parameters and what it has
// sampled since it was configured.
type SamplerState struct {
	Params  model.Sampling
	Occ     []float32 // [V] decayed occurrence counts
	Seen    []bool    // [V] sampled at least once (the presence penalty applies)
	Counter uint32    // tokens sampled since configured: the RNG counter
}

// NewSamplerState validates p and returns a fresh state for a vocabulary of
// vocab tokens (no tokens seen, counter 0).
func NewSamplerState(p model.Sampling, vocab int) (*SamplerState, error) {
	if err := p.Validate(vocab); err != nil {
		return nil, err
	}
	p.Ban = append([]int(nil), p.Ban...)
	return &SamplerState{Params: p, Occ: make([]float32, vocab), Seen: make([]bool, vocab)}, nil
}

// Clone returns an independent copy (a forked sequence).
func (s *SamplerState) Clone() *SamplerState {
	c := *s
	c.Params.Ban = append([]int(nil), s.Params.Ban...)
	c.Occ = append([]float32(nil), s.Occ...)
	c.Seen = append([]bool(nil), s.Seen...)
	return &c
}

// Sample picks the next token for logits [V] and records it (Observe).
func (s *SamplerState) Sample(logits []float32) (int, error) {
	tok, err := s.Choose(logits)
	if err != nil {
		return 0, err
	}
	s.Observe(tok)
	return tok, nil
}

// Choose picks the next token for logits [V] without recording it: the
// argmax of the penalised logits when greedy, else a draw from
// Distribution with u = model.SampleUniform(Seed, Counter).
func (s *SamplerState) Choose(logits []float32) (int, error) {
	if s.Params.IsGreedy() {
		l, err := s.penalised(logits)
		if err != nil {
			return 0, err
		}
		return model.Argmax(l), nil
	}
	q, err := s.Distribution(logits)
	if err != nil {
		return 0, err
	}
	return Draw(q, model.SampleUniform(s.Params.Seed, s.Counter)), nil
}

// Distribution returns the final distribution q [V] the next token is drawn
// from (zero for every token dropped): for a greedy sampler, 1 at the argmax.
func (s *SamplerState) Distribution(logits []float32) ([]float32, error) {
	l, err := s.penalised(logits)
	if err != nil {
		return nil, err
	}
	q := make([]float32, len(l))
	p := s.Params
	if p.IsGreedy() {
		q[model.Argmax(l)] = 1
		return q, nil
	}
	Softmax(q, l)
	tk := TopKThreshold(q, p.TopK)
	cutoff := TopPCutoff(q, p.TopP)
	Truncate(q, tk, cutoff, p.TopP)
	ApplyTemperature(q, p.Temperature)
	Normalise(q)
	return q, nil
}

// penalised checks logits and returns them with the penalties and bans applied.
func (s *SamplerState) penalised(logits []float32) ([]float32, error) {
	if len(logits) != len(s.Occ) {
		return nil, fmt.Errorf("sampler: %d logits, want the vocabulary size %d", len(logits), len(s.Occ))
	}
	l := make([]float32, len(logits))
	PenalisedLogits(l, logits, s.Occ, s.Seen, s.Params)
	if err := checkLogits(l); err != nil {
		return nil, err
	}
	return l, nil
}

// PenalisedLogits writes the logits with BlinkDL's penalties applied: for
// every seen token t, l[t] − (presence + occ[t]·frequency) (each operation
// rounded to float32); −∞ for banned ids.
//
//	dst, logits, occ, seen: [V]
func PenalisedLogits(dst, logits, occ []float32, seen []bool, p model.Sampling) {
	for t, x := range logits {
		if seen[t] {
			pen := p.PresencePenalty + float32(occ[t]*p.FrequencyPenalty)
			x = float32(x - pen)
		}
		dst[t] = x
	}
	for _, id := range p.Ban {
		dst[id] = float32(math.Inf(-1))
	}
}

// checkLogits refuses NaN and +∞ logits and rows with no finite logit.
func checkLogits(l []float32) error {
	finite := 0
	for t, x := range l {
		switch {
		case math.IsNaN(float64(x)) || math.IsInf(float64(x), 1):
			return fmt.Errorf("sampler: logit %d is %v", t, x)
		case !math.IsInf(float64(x), -1):
			finite++
		}
	}
	if finite == 0 {
		return fmt.Errorf("sampler: no finite logit among %d (all banned or -Inf)", len(l))
	}
	return nil
}

// smallestNormal is 2⁻¹²⁶: probabilities below it are flushed to zero.
const smallestNormal = 0x1p-126

// Softmax writes softmax(l) as float32 (−∞ gives 0; values below 2⁻¹²⁶ are
// flushed to 0).
//
//	dst, l: [V]
func Softmax(dst, l []float32) {
	m := math.Inf(-1)
	for _, x := range l {
		m = math.Max(m, float64(x))
	}
	var sum float64
	for _, x := range l {
		sum += math.Exp(float64(x) - m)
	}
	for t, x := range l {
		dst[t] = flush(float32(math.Exp(float64(x)-m) / sum))
	}
}

func flush(p float32) float32 {
	if p < smallestNormal {
		return 0
	}
	return p
}

// sortedDescending returns a sorted copy of p, largest first.
func sortedDescending(p []float32) []float32 {
	s := append([]float32(nil), p...)
	slices.Sort(s)
	slices.Reverse(s)
	return s
}

// TopKThreshold returns the k-th largest probability (counting repeats), the
// smallest value top-k keeps; 0 (keep all) when k is 0 or at least V.
//
//	p: [V]
func TopKThreshold(p []float32, k int) float32 {
	if k <= 0 || k >= len(p) {
		return 0
	}
	return sortedDescending(p)[k-1]
}

// TopPCutoff returns the demo's top-p cutoff on the full distribution p:
// sorted in descending order, the value at the first index whose cumulative
// sum reaches topP. It is 0 (no cutoff) when topP ≥ 1 or when the sum never
// reaches topP (rounding), and the maximum when topP is 0.
//
//	p: [V]
func TopPCutoff(p []float32, topP float32) float32 {
	if topP >= 1 {
		return 0
	}
	sorted := sortedDescending(p)
	if topP <= 0 {
		return sorted[0]
	}
	var cum float64
	for _, x := range sorted {
		cum += float64(x)
		if cum >= float64(topP) {
			return x
		}
	}
	return 0
}

// Truncate zeroes every probability below max(tk, cutoff). When top-p cuts
// (0 < topP < 1, cutoff > 0) and the cutoff tokens survived top-k
// (cutoff ≥ tk), the tokens equal to the cutoff are set to
// cutoff + (topP − Σ kept)/count, so the kept mass is topP (a value that
// rounds to ≤ 0 drops them).
//
//	p: [V]
func Truncate(p []float32, tk, cutoff, topP float32) {
	thr := max(tk, cutoff)
	var kept float64
	count := 0
	for t, x := range p {
		if x < thr {
			p[t] = 0
			continue
		}
		kept += float64(x)
		if x == cutoff {
			count++
		}
	}
	if !(topP > 0 && topP < 1 && cutoff > 0 && cutoff >= tk) || count == 0 {
		return
	}
	adjusted := max(float32(float64(cutoff)+(float64(topP)-kept)/float64(count)), 0)
	for t, x := range p {
		if x == cutoff {
			p[t] = adjusted
		}
	}
}

// ApplyTemperature raises the kept probabilities to the power 1/temperature
// (temperature 1 leaves them alone). It computes (p/pmax)^(1/T), pmax the
// largest, which is proportional to p^(1/T) and cannot underflow at the top;
// results below 2⁻¹²⁶ are flushed to 0.
//
//	p: [V]
func ApplyTemperature(p []float32, temperature float32) {
	if temperature == 1 {
		return
	}
	var pmax float32
	for _, x := range p {
		pmax = max(pmax, x)
	}
	e := 1 / float64(temperature)
	for t, x := range p {
		if x > 0 {
			p[t] = flush(float32(math.Pow(float64(x)/float64(pmax), e)))
		}
	}
}

// Normalise divides the weights w by their sum.
//
//	w: [V]
func Normalise(w []float32) {
	var sum float64
	for _, x := range w {
		sum += float64(x)
	}
	for t, x := range w {
		w[t] = float32(float64(x) / sum)
	}
}

// Draw returns the token whose interval of the cumulative distribution of q
// (in token-id order) holds u: the first t with q[0] + … + q[t] > u, or the
// last token with q > 0 when rounding leaves u above the total.
//
//	q: [V]
func Draw(q []float32, u float32) int {
	var cum float64
	last := 0
	for t, x := range q {
		if x <= 0 {
			continue
		}
		last = t
		cum += float64(x)
		if cum > float64(u) {
			return t
		}
	}
	return last
}

// BoundaryDistance is how far u lies from the nearest boundary of the
// cumulative distribution of q (0, q[0], q[0]+q[1], …, in token-id order):
// draws closer than an implementation's rounding error to a boundary may
// legitimately differ between implementations.
//
//	q: [V]
func BoundaryDistance(q []float32, u float32) float64 {
	d := float64(u)
	var cum float64
	for _, x := range q {
		if x <= 0 {
			continue
		}
		cum += float64(x)
		d = math.Min(d, math.Abs(cum-float64(u)))
	}
	return d
}

// Observe records that token was sampled: every count decays, the token's
// count grows by one, it is marked seen, and the counter advances.
func (s *SamplerState) Observe(token int) {
	for t := range s.Occ {
		s.Occ[t] = float32(s.Occ[t] * s.Params.PenaltyDecay)
	}
	s.Occ[token] = float32(s.Occ[token] + 1)
	s.Seen[token] = true
	s.Counter++
}
