package model

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Sampling configures how one sequence picks its next token from the logits:
// BlinkDL's RWKV-7 sampler (spec/tokenizer.md §6). The CPU reference
// (cpuref.SamplerState) and the GPU kernel (gpu.Sampler) implement it; in
// order, for each step:
//
//  1. Penalties: for every token t sampled since the sampler was configured,
//     logit[t] −= PresencePenalty + occ[t]·FrequencyPenalty, where occ is a
//     decayed count: after each sampled token every occ is multiplied by
//     PenaltyDecay, then occ[sampled] += 1. The presence part applies in
//     full to every token seen (a seen flag, so it survives the decay of occ
//     to zero). Banned ids get logit −∞.
//  2. probs = softmax(logits) in float32.
//  3. Truncation. Top-k (TopK > 0) keeps the probabilities ≥ the k-th
//     largest, so tokens tied with the k-th are all kept (BlinkDL's demo
//     keeps exactly k, tie order unspecified). Top-p (TopP < 1) follows the
//     RWKV-7 demo: on the full distribution sorted in descending order, the
//     first index whose cumulative sum reaches TopP gives the cutoff; every
//     probability below the cutoff is zeroed; when TopP > 0 and the cutoff
//     tokens survived top-k, the token(s) equal to the cutoff are set to
//     cutoff + (TopP − Σ kept)/count, so the kept mass is exactly TopP.
//     TopP = 0 keeps only the maximum (ties kept); TopP = 1 keeps all.
//  4. Temperature, after truncation: probs^(1/Temperature). Temperature 0
//     is greedy: the argmax of the penalised logits (lowest id on ties),
//     whatever the other parameters.
//  5. A draw from the renormalised distribution by inverse CDF in token-id
//     order, with u = SampleUniform(Seed, n) where n counts the tokens this
//     sequence has sampled since its sampler was configured.
//
// The zero value is greedy decoding with no penalties.
type Sampling struct {
	// Temperature is 0 (greedy) or in [MinTemperature, MaxTemperature].
	Temperature float32
	// TopP is the nucleus mass in [0, 1]; 1 turns top-p off, 0 keeps the
	// most probable token(s).
	TopP float32
	// TopK keeps the TopK most probable tokens (and any tied with the
	// k-th); 0 turns it off. At most the vocabulary size.
	TopK int
	// PresencePenalty is subtracted from the logit of every token seen.
	PresencePenalty float32
	// FrequencyPenalty is multiplied by the decayed count of a token.
	FrequencyPenalty float32
	// PenaltyDecay in [0, 1] multiplies every count after each token.
	PenaltyDecay float32
	// Seed keys the random stream (see SampleUniform).
	Seed uint64
	// Ban lists up to MaxBanned token ids that are never sampled.
	Ban []int
}

// Limits of the Sampling fields accepted by Validate.
const (
	MinTemperature = 0.001 // smaller positive temperatures: use 0 (greedy)
	MaxTemperature = 100
	MaxPenalty     = 100 // |PresencePenalty|, |FrequencyPenalty|
	MaxBanned      = 8
)

// IsGreedy reports whether the sampler takes the argmax (Temperature ≤ 0).
func (s Sampling) IsGreedy() bool { return s.Temperature <= 0 }

// Validate checks every field against its accepted range for a vocabulary of
// vocab tokens and names the first field that is out of range.
func (s Sampling) Validate(vocab int) error {
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case vocab <= 0:
		return fmt.Errorf("sampling: vocabulary size %d, want > 0", vocab)
	case !finite(s.Temperature) || s.Temperature < 0 || (s.Temperature > 0 && s.Temperature < MinTemperature) || s.Temperature > MaxTemperature:
		return fmt.Errorf("sampling: temperature %v, want 0 (greedy) or in [%v, %v]", s.Temperature, MinTemperature, MaxTemperature)
	case !finite(s.TopP) || s.TopP < 0 || s.TopP > 1:
		return fmt.Errorf("sampling: top-p %v, want in [0, 1]", s.TopP)
	case s.TopK < 0 || s.TopK > vocab:
		return fmt.Errorf("sampling: top-k %d, want in [0, %d] (0 = off)", s.TopK, vocab)
	case !finite(s.PresencePenalty) || math.Abs(float64(s.PresencePenalty)) > MaxPenalty:
		return fmt.Errorf("sampling: presence penalty %v, want in [-%d, %d]", s.PresencePenalty, MaxPenalty, MaxPenalty)
	case !finite(s.FrequencyPenalty) || math.Abs(float64(s.FrequencyPenalty)) > MaxPenalty:
		return fmt.Errorf("sampling: frequency penalty %v, want in [-%d, %d]", s.FrequencyPenalty, MaxPenalty, MaxPenalty)
	case !finite(s.PenaltyDecay) || s.PenaltyDecay < 0 || s.PenaltyDecay > 1:
		return fmt.Errorf("sampling: penalty decay %v, want in [0, 1]", s.PenaltyDecay)
	case len(s.Ban) > MaxBanned:
		return fmt.Errorf("sampling: %d banned ids, want at most %d", len(s.Ban), MaxBanned)
	}
	for i, id := range s.Ban {
		if id < 0 || id >= vocab {
			return fmt.Errorf("sampling: banned id %d (ban[%d]) outside the vocabulary [0, %d)", id, i, vocab)
		}
	}
	return nil
}

// String lists the parameters, e.g. for logs.
func (s Sampling) String() string {
	if s.IsGreedy() {
		return fmt.Sprintf("greedy presence=%v frequency=%v decay=%v ban=%v", s.PresencePenalty, s.FrequencyPenalty, s.PenaltyDecay, s.Ban)
	}
	return fmt.Sprintf("temperature=%v top-p=%v top-k=%d presence=%v frequency=%v decay=%v seed=%d ban=%v",
		s.Temperature, s.TopP, s.TopK, s.PresencePenalty, s.FrequencyPenalty, s.PenaltyDecay, s.Seed, s.Ban)
}

// presets are the published settings of spec/tokenizer.md §6.
var presets = map[string]Sampling{
	// BlinkDL's RWKV-7 G1 chat demo (API_DEMO_CHAT.py), which also bans id 0
	// (the end-of-text token: the demo stops on "\n\n" instead), and the
	// RWKV documentation's "default chat / general" row.
	"chat": {Temperature: 1.0, TopP: 0.3, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0.996, Ban: []int{0}},
	// The documentation's "creative writing" row.
	"creative": {Temperature: 0.6, TopP: 0.8, PresencePenalty: 2.0, FrequencyPenalty: 0.2, PenaltyDecay: 0.99},
	// The documentation's "conservative (QA, code)" row, also BlinkDL's
	// advice for G0 7.2B.
	"precise": {Temperature: 0.3, TopP: 0.3, PenaltyDecay: 0.996},
	// The documentation's "mechanical" row: greedy decoding.
	"greedy": {Temperature: 0, TopP: 0, PenaltyDecay: 0.996},
}

// PresetNames lists the names Preset accepts, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Preset returns the published sampling settings called name (PresetNames),
// with Seed 0.
func Preset(name string) (Sampling, error) {
	p, ok := presets[name]
	if !ok {
		return Sampling{}, fmt.Errorf("sampling: unknown preset %q (want one of %s)", name, strings.Join(PresetNames(), ", "))
	}
	p.Ban = append([]int(nil), p.Ban...)
	return p, nil
}
