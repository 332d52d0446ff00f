package synth

import (
	"fmt"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Preset is a named model shape.
type Preset struct {
	// Name identifies the preset on the command line and in file names
	// ("0.1b", "tiny", ...).
	Name string
	// Config holds the hyperparameters; Config.Name is the general.name
	// written to the file.
	Config model.Config
}

// WorldVocabSize is the size of the RWKV World vocabulary (65 529 tokens,
// <s> and six [PADn] entries).
const WorldVocabSize = 65536

// preset builds a published shape: N = 64, F = 4·D, V = 65 536, ε = 1e-5.
func preset(name string, layers, dim, rw, ra, rv, rg int) Preset {
	return shape(name, layers, dim, 4*dim, rw, ra, rv, rg, WorldVocabSize)
}

func shape(name string, layers, dim, ffn, rw, ra, rv, rg, vocab int) Preset {
	const headSize = 64
	return Preset{Name: name, Config: model.Config{
		Name:     "synthetic RWKV7 " + name,
		Layers:   layers,
		Dim:      dim,
		HeadSize: headSize,
		Heads:    dim / headSize,
		FFN:      ffn,
		RankW:    rw,
		RankA:    ra,
		RankV:    rv,
		RankG:    rg,
		Vocab:    vocab,
		Eps:      1e-5,
	}}
}

// Presets returns the built-in shapes, smallest first: "tiny" (the shared
// test fixture's shape: L3 D256 F1024, ranks w/a/v/g 32/64/32/96, the first
// 1024 World tokens) and the published RWKV-7 sizes of spec/rwkv7.md §9.
func Presets() []Preset {
	return []Preset{
		shape("tiny", 3, 256, 1024, 32, 64, 32, 96, 1024),
		preset("0.1b", 12, 768, 64, 64, 32, 128),
		preset("0.4b", 24, 1024, 64, 64, 32, 160),
		preset("1.5b", 24, 2048, 96, 96, 64, 256),
		preset("2.9b", 32, 2560, 96, 96, 64, 320),
		preset("7.2b", 32, 4096, 128, 128, 96, 480),
		preset("13.3b", 61, 4096, 128, 128, 96, 480),
	}
}

// PresetNames lists the names of Presets, in the same order.
func PresetNames() []string {
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	return names
}

// PresetByName returns the preset with the given name (case-insensitive);
// the error lists the valid names.
func PresetByName(name string) (Preset, error) {
	for _, p := range Presets() {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("synth: unknown preset %q (valid: %s)", name, strings.Join(PresetNames(), ", "))
}
