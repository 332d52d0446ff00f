package model

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestSamplingPresets checks every preset against the values of
// spec/tokenizer.md §6, written out by hand.
func TestSamplingPresets(t *testing.T) {
	want := map[string]Sampling{
		"chat":     {Temperature: 1.0, TopP: 0.3, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0.996, Ban: []int{0}},
		"creative": {Temperature: 0.6, TopP: 0.8, PresencePenalty: 2.0, FrequencyPenalty: 0.2, PenaltyDecay: 0.99},
		"precise":  {Temperature: 0.3, TopP: 0.3, PresencePenalty: 0, FrequencyPenalty: 0, PenaltyDecay: 0.996},
		"greedy":   {Temperature: 0, TopP: 0, PresencePenalty: 0, FrequencyPenalty: 0, PenaltyDecay: 0.996},
	}
	if got := PresetNames(); !reflect.DeepEqual(got, []string{"chat", "creative", "greedy", "precise"}) {
		t.Errorf("PresetNames() = %v", got)
	}
	for name, w := range want {
		p, err := Preset(name)
		if err != nil {
			t.Fatalf("Preset(%q): %v", name, err)
		}
		if !reflect.DeepEqual(p, w) {
			t.Errorf("Preset(%q) = %+v, want %+v", name, p, w)
		}
		if err := p.Validate(65536); err != nil {
			t.Errorf("Preset(%q) does not validate: %v", name, err)
		}
		if p.IsGreedy() != (name == "greedy") {
			t.Errorf("Preset(%q).IsGreedy() = %v", name, p.IsGreedy())
		}
	}
	// The returned Ban is a copy: changing it leaves the preset alone.
	p, _ := Preset("chat")
	p.Ban[0] = 7
	if q, _ := Preset("chat"); q.Ban[0] != 0 {
		t.Errorf("Preset returned the shared ban list")
	}
	if _, err := Preset("spicy"); err == nil || !strings.Contains(err.Error(), "chat, creative, greedy, precise") {
		t.Errorf("Preset(unknown) error %v, want the list of names", err)
	}
}

// TestSamplingValidate checks that each field out of range is refused with
// an error naming it, and that the range ends are accepted.
func TestSamplingValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	ok := Sampling{Temperature: 1, TopP: 0.5, TopK: 10, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0.99, Ban: []int{0, 9}}
	if err := ok.Validate(10); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
	good := []func(*Sampling){
		func(s *Sampling) { s.Temperature = 0 },
		func(s *Sampling) { s.Temperature = 0.001 },
		func(s *Sampling) { s.Temperature = 100 },
		func(s *Sampling) { s.TopP = 0 },
		func(s *Sampling) { s.TopP = 1 },
		func(s *Sampling) { s.TopK = 0 },
		func(s *Sampling) { s.TopK = 10 },
		func(s *Sampling) { s.PresencePenalty = -100 },
		func(s *Sampling) { s.FrequencyPenalty = 100 },
		func(s *Sampling) { s.PenaltyDecay = 0 },
		func(s *Sampling) { s.PenaltyDecay = 1 },
		func(s *Sampling) { s.Ban = []int{1, 2, 3, 4, 5, 6, 7, 8} },
		func(s *Sampling) { s.Seed = math.MaxUint64 },
	}
	for i, f := range good {
		s := ok
		f(&s)
		if err := s.Validate(10); err != nil {
			t.Errorf("case %d (%v): refused: %v", i, s, err)
		}
	}
	bad := []struct {
		edit func(*Sampling)
		want string
	}{
		{func(s *Sampling) { s.Temperature = -1 }, "temperature"},
		{func(s *Sampling) { s.Temperature = 0.0009 }, "temperature"},
		{func(s *Sampling) { s.Temperature = 101 }, "temperature"},
		{func(s *Sampling) { s.Temperature = nan }, "temperature"},
		{func(s *Sampling) { s.TopP = -0.1 }, "top-p"},
		{func(s *Sampling) { s.TopP = 1.01 }, "top-p"},
		{func(s *Sampling) { s.TopP = nan }, "top-p"},
		{func(s *Sampling) { s.TopK = -1 }, "top-k"},
		{func(s *Sampling) { s.TopK = 11 }, "top-k"},
		{func(s *Sampling) { s.PresencePenalty = inf }, "presence"},
		{func(s *Sampling) { s.PresencePenalty = -101 }, "presence"},
		{func(s *Sampling) { s.FrequencyPenalty = nan }, "frequency"},
		{func(s *Sampling) { s.PenaltyDecay = 1.5 }, "decay"},
		{func(s *Sampling) { s.PenaltyDecay = -0.5 }, "decay"},
		{func(s *Sampling) { s.Ban = []int{1, 2, 3, 4, 5, 6, 7, 8, 9} }, "banned ids"},
		{func(s *Sampling) { s.Ban = []int{10} }, "banned id 10"},
		{func(s *Sampling) { s.Ban = []int{-1} }, "banned id -1"},
	}
	for i, c := range bad {
		s := ok
		c.edit(&s)
		err := s.Validate(10)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d (%v): error %v, want one naming %q", i, s, err, c.want)
		}
	}
	if err := ok.Validate(0); err == nil {
		t.Error("vocabulary 0 accepted")
	}
}

// TestSamplerPhiloxKnownAnswers checks Philox4x32-10 against the Random123
// known-answer vectors (tests/kat_vectors, the three "philox4x32 10" lines:
// counter, key, result).
func TestSamplerPhiloxKnownAnswers(t *testing.T) {
	cases := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// TestSampleUniform checks the definition of u: counter 0 under seed 0 is the
// first known-answer word 0x6627e8d5 (top 24 bits 0x6627e8), and the seed's
// words are the key (low word first).
func TestSampleUniform(t *testing.T) {
	if got, want := SampleUniform(0, 0), float32(0x6627e8)/(1<<24); got != want {
		t.Errorf("SampleUniform(0, 0) = %v, want %v", got, want)
	}
	if got, want := SampleUniform(0x299f31d0a4093822, 0), float32(Philox4x32([4]uint32{}, [2]uint32{0xa4093822, 0x299f31d0})[0]>>8)/(1<<24); got != want {
		t.Errorf("SampleUniform(seed words) = %v, want %v", got, want)
	}
	// All values lie in [0, 1) and their mean over many counters is near 1/2.
	var sum float64
	const n = 100000
	for c := uint32(0); c < n; c++ {
		u := SampleUniform(42, c)
		if u < 0 || u >= 1 {
			t.Fatalf("SampleUniform(42, %d) = %v outside [0, 1)", c, u)
		}
		sum += float64(u)
	}
	// Standard error of the mean: sqrt(1/12/n) ≈ 0.0009; allow 5 of them.
	if m := sum / n; math.Abs(m-0.5) > 0.0046 {
		t.Errorf("mean of %d uniforms = %v, want 0.5 ± 0.0046", n, m)
	}
}
