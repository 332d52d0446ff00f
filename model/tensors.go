package model

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// Global tensor names (spec/rwkv7.md §2).
const (
	TensorEmbed     = "token_embd.weight"
	TensorLn0W      = "token_embd_norm.weight"
	TensorLn0B      = "token_embd_norm.bias"
	TensorLnOutW    = "output_norm.weight"
	TensorLnOutB    = "output_norm.bias"
	TensorHead      = "output.weight"
	layerNamePrefix = "blk.%d."
)

// LayerTensor returns the full name of a per-layer tensor, for example
// LayerTensor(3, "time_mix_key.weight") = "blk.3.time_mix_key.weight".
func LayerTensor(layer int, suffix string) string {
	return fmt.Sprintf(layerNamePrefix, layer) + suffix
}

// TensorSpec is the expected name and shape (ggml order, ne0 first, trailing
// ones dropped) of one tensor of an rwkv7 file.
type TensorSpec struct {
	Name string
	Dims []uint64
	// AltDims is a second accepted shape (layer 0's dummy v-LoRA tensors
	// may carry the iclr rank instead of the value-residual rank).
	AltDims []uint64
	// Vector marks 1-D tensors; Matrix tensors are multiplied with vectors.
	Vector bool
}

// TensorSpecs lists every tensor an rwkv7 file of this configuration must
// contain, in the converter's order: 6 + 28·L names.
func (c Config) TensorSpecs() []TensorSpec {
	D, F, V := uint64(c.Dim), uint64(c.FFN), uint64(c.Vocab)
	vec := func(name string) TensorSpec { return TensorSpec{Name: name, Dims: []uint64{D}, Vector: true} }
	mat := func(name string, ne0, ne1 uint64) TensorSpec {
		return TensorSpec{Name: name, Dims: []uint64{ne0, ne1}}
	}
	specs := []TensorSpec{
		mat(TensorEmbed, D, V),
		vec(TensorLn0W), vec(TensorLn0B),
	}
	for l := 0; l < c.Layers; l++ {
		n := func(s string) string { return LayerTensor(l, s) }
		rw, ra, rv, rg := uint64(c.RankW), uint64(c.RankA), uint64(c.RankV), uint64(c.RankG)
		v1 := mat(n("time_mix_v1.weight"), D, rv)
		v2 := mat(n("time_mix_v2.weight"), rv, D)
		if l == 0 {
			// The converter writes copies of a1/a2 here; they are never used.
			v1.AltDims = []uint64{D, ra}
			v2.AltDims = []uint64{ra, D}
		}
		specs = append(specs,
			vec(n("attn_norm.weight")), vec(n("attn_norm.bias")),
			vec(n("attn_norm_2.weight")), vec(n("attn_norm_2.bias")),
			TensorSpec{Name: n("time_mix_lerp_fused.weight"), Dims: []uint64{D, 1, 1, 6}},
			vec(n("time_mix_w0.weight")),
			mat(n("time_mix_w1.weight"), D, rw), mat(n("time_mix_w2.weight"), rw, D),
			vec(n("time_mix_a0.weight")),
			mat(n("time_mix_a1.weight"), D, ra), mat(n("time_mix_a2.weight"), ra, D),
			vec(n("time_mix_v0.weight")), v1, v2,
			mat(n("time_mix_g1.weight"), D, rg), mat(n("time_mix_g2.weight"), rg, D),
			vec(n("time_mix_k_k.weight")), vec(n("time_mix_k_a.weight")), vec(n("time_mix_r_k.weight")),
			mat(n("time_mix_key.weight"), D, D), mat(n("time_mix_value.weight"), D, D),
			mat(n("time_mix_receptance.weight"), D, D),
			vec(n("time_mix_ln.weight")), vec(n("time_mix_ln.bias")),
			mat(n("time_mix_output.weight"), D, D),
			vec(n("channel_mix_lerp_k.weight")),
			mat(n("channel_mix_key.weight"), D, F), mat(n("channel_mix_value.weight"), F, D),
		)
	}
	specs = append(specs, vec(TensorLnOutW), vec(TensorLnOutB), mat(TensorHead, D, V))
	return specs
}

// trimDims drops trailing ones, so {D,1,1} compares equal to {D}.
func trimDims(d []uint64) []uint64 {
	n := len(d)
	for n > 1 && d[n-1] == 1 {
		n--
	}
	return d[:n]
}

func sameDims(a, b []uint64) bool {
	a, b = trimDims(a), trimDims(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func dimsString(d []uint64) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprint(x)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// ValidationError lists every problem Validate found in a file's tensor table.
type ValidationError struct {
	File     string
	Problems []string
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("model: %s: %d tensor problem(s):\n  %s", e.File, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// NoWeightsError is Validate's error for a file that holds none of the
// tensors of the model its metadata describes: a vocabulary-only GGUF, or a
// header without data. One line instead of one problem per missing tensor.
type NoWeightsError struct {
	File     string
	Expected int  // tensors the configuration needs
	Others   int  // tensors present that the configuration does not name
	HasVocab bool // the file holds tokenizer.ggml.tokens
}

func (e *NoWeightsError) Error() string {
	return fmt.Sprintf("model: %s: %s: it is not a model file", e.File, e.Reason())
}

// Reason is the message without the file name, e.g. "has the vocabulary but
// no weight tensors (0 of 342 expected)".
func (e *NoWeightsError) Reason() string {
	what := "has no weight tensors"
	if e.HasVocab {
		what = "has the vocabulary but no weight tensors"
	}
	others := ""
	if e.Others > 0 {
		others = fmt.Sprintf(", %d other tensors", e.Others)
	}
	return fmt.Sprintf("%s (0 of %d expected%s)", what, e.Expected, others)
}

// ErrUnsupportedType is wrapped by errors about tensor types this engine
// cannot compute with.
var ErrUnsupportedType = errors.New("unsupported tensor type")

// Validate checks the tensor table of f against the configuration: every
// missing, extra or misshaped tensor is reported by name with the expected
// and found shape, as is any tensor whose type is not a supported weight
// format. It returns a *ValidationError listing all problems, a
// *NoWeightsError when none of the expected tensors is present, or nil.
func Validate(f *gguf.File, c Config) error {
	// Decide from the counts before listing 6 + 28·L names: a header of a
	// few bytes may claim a million layers.
	want := 6 + 28*c.Layers
	_, vocab := f.Get(KeyTokens)
	if len(f.Tensors) == 0 {
		return &NoWeightsError{File: f.Path, Expected: want, HasVocab: vocab}
	}
	if want > 2*len(f.Tensors)+64 {
		return &ValidationError{File: f.Path, Problems: []string{fmt.Sprintf(
			"the file holds %d tensors, far fewer than the %d that %s = %d needs", len(f.Tensors), want, KeyBlockCount, c.Layers)}}
	}
	specs := c.TensorSpecs()
	present := 0
	for _, s := range specs {
		if _, ok := f.Tensor(s.Name); ok {
			present++
		}
	}
	if present == 0 {
		return &NoWeightsError{File: f.Path, Expected: len(specs), Others: len(f.Tensors), HasVocab: vocab}
	}
	var problems []string
	expected := map[string]bool{}
	for _, s := range specs {
		expected[s.Name] = true
		ti, ok := f.Tensor(s.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("missing tensor %s, expected shape %s", s.Name, dimsString(s.Dims)))
			continue
		}
		if !sameDims(ti.Dims, s.Dims) && (s.AltDims == nil || !sameDims(ti.Dims, s.AltDims)) {
			want := dimsString(s.Dims)
			if s.AltDims != nil {
				want += " or " + dimsString(s.AltDims)
			}
			problems = append(problems, fmt.Sprintf("tensor %s has shape %s, expected %s", s.Name, dimsString(ti.Dims), want))
		}
		if !ti.Type.Supported() {
			problems = append(problems, fmt.Sprintf("tensor %s has type %s (id %d), which is not supported (%v)", s.Name, ti.Type, uint32(ti.Type), ErrUnsupportedType))
		}
	}
	var extra []string
	for _, ti := range f.Tensors {
		if !expected[ti.Name] {
			extra = append(extra, fmt.Sprintf("unexpected tensor %s %s (%s)", ti.Name, dimsString(ti.Dims), ti.Type))
		}
	}
	sort.Strings(extra)
	problems = append(problems, extra...)
	if len(problems) > 0 {
		return &ValidationError{File: f.Path, Problems: problems}
	}
	return nil
}
