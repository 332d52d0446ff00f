package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// samplingFlags are the sampler flags of run and chat: a preset
// (model.Preset) whose fields the explicit flags override.
type samplingFlags struct {
	preset           string
	temperature      float64
	topP             float64
	topK             int
	presencePenalty  float64
	frequencyPenalty float64
	penaltyDecay     float64
	seed             uint64

	flags *pflag.FlagSet // to tell which flags were given
}

// addSamplingFlags registers the sampler flags on cmd with preset as the
// default preset.
func addSamplingFlags(cmd *cobra.Command, preset string) *samplingFlags {
	s := &samplingFlags{flags: cmd.Flags()}
	f := cmd.Flags()
	f.StringVar(&s.preset, "preset", preset, "sampling preset: "+strings.Join(model.PresetNames(), ", ")+" (explicit flags override its fields)")
	f.Float64Var(&s.temperature, "temperature", 0, fmt.Sprintf("sampling temperature: 0 (greedy) or in [%g, %d]", model.MinTemperature, model.MaxTemperature))
	f.Float64Var(&s.topP, "top-p", 0, "nucleus mass in [0, 1] (1 = off, 0 = the most probable token)")
	f.IntVar(&s.topK, "top-k", 0, "keep the k most probable tokens (0 = off)")
	f.Float64Var(&s.presencePenalty, "presence-penalty", 0, fmt.Sprintf("subtracted from the logit of every token generated, in [-%d, %d]", model.MaxPenalty, model.MaxPenalty))
	f.Float64Var(&s.frequencyPenalty, "frequency-penalty", 0, fmt.Sprintf("times a token's decayed count, subtracted from its logit, in [-%d, %d]", model.MaxPenalty, model.MaxPenalty))
	f.Float64Var(&s.penaltyDecay, "penalty-decay", 0, "multiplies every token count after each token, in [0, 1]")
	f.Uint64Var(&s.seed, "seed", 0, "random seed of the sampler (default: a random one, shown in the summary)")
	return s
}

// changed reports whether the user gave the flag.
func (s *samplingFlags) changed(name string) bool {
	fl := s.flags.Lookup(name)
	return fl != nil && fl.Changed
}

// checkFloatRange returns an error naming flag unless v is finite and in
// [lo, hi].
func checkFloatRange(flag string, v, lo, hi float64, hint string) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return fmt.Errorf("%s %g: expected a number in [%g, %g]%s", flag, v, lo, hi, hint)
	}
	return nil
}

// sampling returns the preset with the explicit flags applied, every value
// checked against its range with an error naming its flag; vocab bounds
// --top-k. seeded is false when no --seed was given: Seed is then random.
func (s *samplingFlags) sampling(vocab int) (p model.Sampling, seeded bool, err error) {
	p, err = model.Preset(s.preset)
	if err != nil {
		return p, false, fmt.Errorf("--preset %q: expected one of %s", s.preset, strings.Join(model.PresetNames(), ", "))
	}
	if s.changed("temperature") {
		t := s.temperature
		if t != 0 {
			if err := checkFloatRange("--temperature", t, model.MinTemperature, model.MaxTemperature, " or 0 (greedy)"); err != nil {
				return p, false, err
			}
		}
		p.Temperature = float32(t)
	}
	if s.changed("top-p") {
		if err := checkFloatRange("--top-p", s.topP, 0, 1, ""); err != nil {
			return p, false, err
		}
		p.TopP = float32(s.topP)
	}
	if s.changed("top-k") {
		if err := checkInt("--top-k", s.topK, 0, vocab); err != nil {
			return p, false, fmt.Errorf("%w (0 = off; the vocabulary has %d tokens)", err, vocab)
		}
		p.TopK = s.topK
	}
	if s.changed("presence-penalty") {
		if err := checkFloatRange("--presence-penalty", s.presencePenalty, -model.MaxPenalty, model.MaxPenalty, ""); err != nil {
			return p, false, err
		}
		p.PresencePenalty = float32(s.presencePenalty)
	}
	if s.changed("frequency-penalty") {
		if err := checkFloatRange("--frequency-penalty", s.frequencyPenalty, -model.MaxPenalty, model.MaxPenalty, ""); err != nil {
			return p, false, err
		}
		p.FrequencyPenalty = float32(s.frequencyPenalty)
	}
	if s.changed("penalty-decay") {
		if err := checkFloatRange("--penalty-decay", s.penaltyDecay, 0, 1, ""); err != nil {
			return p, false, err
		}
		p.PenaltyDecay = float32(s.penaltyDecay)
	}
	seeded = s.changed("seed")
	if seeded {
		p.Seed = s.seed
	} else {
		p.Seed = randomSeed()
	}
	if err := p.Validate(vocab); err != nil {
		return p, seeded, err
	}
	return p, seeded, nil
}

// randomSeed draws a seed from the system's random source.
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported systems
	return binary.LittleEndian.Uint64(b[:])
}

// describeSampling names the sampler for summaries: "greedy" or the
// temperature and seed.
func describeSampling(p model.Sampling) string {
	if p.IsGreedy() {
		return "greedy"
	}
	return fmt.Sprintf("temperature %g, top-p %g, seed %d", p.Temperature, p.TopP, p.Seed)
}
