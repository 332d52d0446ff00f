package synth

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Value rules. Every element is base + std·z with z standard normal (cut at
// ±4.33σ), clamped where noted. The rules follow the statistics of the shared
// tiny fixture (spec: fixtures/README.md), which was itself shaped after
// RWKV-7's initialisation; matrix scales depend on the fan-in so that every
// preset sees the same activation sizes as the tiny one:
//
//	token_embd                         std 0.1 (ln0 follows)
//	*_norm weights / biases            1 ± 0.05 / 0 ± 0.05
//	time_mix_ln weight / bias          ((l+1)/L)^0.7 ± 0.05 / 0 ± 0.02
//	time_mix_lerp_fused row k          1 − c^(p_k·(1−l/L)) ± 0.07 in [0, 1], p = .2 .9 .7 .7 .9 .2 (r w k v a g)
//	channel_mix_lerp_k                 1 − c^((1−l/L)^4) ± 0.07 in [0, 1]
//	time_mix_w0                        −5.8 + 6.25·c^(0.85+√(l/(L−1))) ± 1.4
//	time_mix_a0                        −0.38·(1−c) ± 0.2
//	time_mix_v0 (l ≥ 1)                0.95 − 0.41·c ± 0.1
//	time_mix_k_k / k_a / r_k           0.76 − 0.1·c ± 0.05 / 1 ± 0.1 / −0.04 ± 0.2
//	LoRA down w1 a1 v1 g1              std 1/√D
//	LoRA up w2 a2 v2 g2                std 1/√rank
//	time_mix receptance value output   std 1/√D
//	time_mix_key                       std 0.5/√D
//	channel_mix_key / value            std 1/√D / 0.5/√F
//	output (head)                      std 2.5/√D (logits of std ≈ 2.5)
//
// where c = i/D is the channel's position in [0, 1) and l the layer.
// Layer 0's v0/v1/v2 are copies of a0/a1/a2, as the converter writes them.

// recipe describes how the values of one tensor are drawn.
type recipe struct {
	std   float32
	base  func(row, col int) float32 // nil: 0
	clamp bool                       // clamp to [0, 1]
}

// tensorPlan is one tensor of a synthetic file.
type tensorPlan struct {
	name     string
	dims     []uint64
	typ      gguf.Type
	seedName string // layer 0's v0/v1/v2 draw a0/a1/a2's values
	rc       recipe
}

// rows is the number of ne0-long rows.
func (p *tensorPlan) rows() int {
	n := 1
	for _, d := range p.dims[1:] {
		n *= int(d)
	}
	return n
}

// splitName returns the layer and suffix of "blk.N.suffix", or -1 and the
// whole name for a global tensor.
func splitName(name string) (int, string) {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1, name
	}
	num, suffix, ok := strings.Cut(rest, ".")
	if !ok {
		return -1, name
	}
	l, err := strconv.Atoi(num)
	if err != nil {
		return -1, name
	}
	return l, suffix
}

// fileType returns llama.cpp's general.file_type (llama_ftype) for a main
// tensor type; the K-quants map to the _M mixes, which for RWKV-7 differ from
// the uniform type only in the Q6_K head.
func fileType(t gguf.Type) (uint32, error) {
	switch t {
	case gguf.F32:
		return 0, nil
	case gguf.F16:
		return 1, nil
	case gguf.Q4_0:
		return 2, nil
	case gguf.Q4_1:
		return 3, nil
	case gguf.Q8_0:
		return 7, nil
	case gguf.Q5_0:
		return 8, nil
	case gguf.Q5_1:
		return 9, nil
	case gguf.Q2_K:
		return 10, nil
	case gguf.Q3_K:
		return 12, nil // Q3_K_M
	case gguf.Q4_K:
		return 15, nil // Q4_K_M
	case gguf.Q5_K:
		return 17, nil // Q5_K_M
	case gguf.Q6_K:
		return 18, nil
	case gguf.BF16:
		return 32, nil
	}
	return 0, fmt.Errorf("synth: type %s is not a supported weight type (valid: %s)", t, typeNames())
}

func typeNames() string {
	names := make([]string, len(gguf.SupportedTypes))
	for i, t := range gguf.SupportedTypes {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}

// storageType returns the type a tensor gets in a file whose main type is t,
// as a conversion to t (F32, F16, BF16) or llama-quantize of an F16
// conversion (every other type) produces it.
func storageType(spec model.TensorSpec, t gguf.Type) gguf.Type {
	_, suffix := splitName(spec.Name)
	switch suffix {
	case model.TensorEmbed,
		"time_mix_key.weight", "time_mix_value.weight", "time_mix_receptance.weight",
		"time_mix_output.weight", "channel_mix_key.weight", "channel_mix_value.weight":
		return t
	case model.TensorHead:
		switch t {
		case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0:
			return t
		}
		return gguf.Q6_K
	case "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_v1.weight", "time_mix_v2.weight",
		"time_mix_g1.weight", "time_mix_g2.weight":
		switch t {
		case gguf.F32, gguf.BF16:
			return t
		}
		return gguf.F16
	}
	// 1-D tensors, time_mix_lerp_fused and the decay LoRA w1/w2.
	return gguf.F32
}

// plan lists every tensor of a synthetic file in converter order with its
// shape, storage type and value recipe.
func plan(p Preset, t gguf.Type) ([]tensorPlan, error) {
	c := p.Config
	specs := c.TensorSpecs()
	out := make([]tensorPlan, 0, len(specs))
	for _, s := range specs {
		tp := tensorPlan{name: s.Name, dims: s.Dims, typ: storageType(s, t), seedName: s.Name}
		layer, suffix := splitName(s.Name)
		if layer == 0 {
			switch suffix {
			case "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight":
				suffix = strings.Replace(suffix, "_v", "_a", 1)
				tp.seedName = model.LayerTensor(0, suffix)
				if s.AltDims != nil {
					tp.dims = s.AltDims
				}
			}
		}
		rc, err := recipeFor(c, layer, suffix)
		if err != nil {
			return nil, err
		}
		tp.rc = rc
		if be := tp.typ.BlockElems(); be == 0 || int(tp.dims[0])%be != 0 {
			return nil, fmt.Errorf("synth: preset %s: tensor %s: ne0 = %d is not a multiple of the %s block size %d", p.Name, s.Name, tp.dims[0], tp.typ, be)
		}
		out = append(out, tp)
	}
	return out, nil
}

// recipeFor returns the value rule of a tensor (see the table above).
func recipeFor(c model.Config, layer int, suffix string) (recipe, error) {
	D := c.Dim
	pos := func(col int) float64 { return float64(col) / float64(D) }
	L := float64(c.Layers)
	l := float64(layer)
	depth := 0.0 // 0 in the first layer, 1 in the last
	if c.Layers > 1 {
		depth = l / (L - 1)
	}
	keep := 1 - l/L // 1 in the first layer, 1/L in the last
	invSqrt := func(n int) float32 { return float32(1 / math.Sqrt(float64(n))) }
	constant := func(v float32) func(int, int) float32 { return func(int, int) float32 { return v } }
	var rc recipe
	switch suffix {
	case model.TensorEmbed:
		rc.std = 0.1
	case model.TensorLn0W, model.TensorLnOutW, "attn_norm.weight", "attn_norm_2.weight":
		rc.std, rc.base = 0.05, constant(1)
	case model.TensorLn0B, model.TensorLnOutB, "attn_norm.bias", "attn_norm_2.bias":
		rc.std = 0.05
	case model.TensorHead:
		rc.std = 2.5 * invSqrt(D)
	case "time_mix_ln.weight":
		rc.std, rc.base = 0.05, constant(float32(math.Pow((l+1)/L, 0.7)))
	case "time_mix_ln.bias":
		rc.std = 0.02
	case "time_mix_lerp_fused.weight":
		p := [6]float64{0.2, 0.9, 0.7, 0.7, 0.9, 0.2} // r, w, k, v, a, g
		rc.std, rc.clamp = 0.07, true
		rc.base = func(row, col int) float32 { return float32(1 - math.Pow(pos(col), p[row%6]*keep)) }
	case "channel_mix_lerp_k.weight":
		e := math.Pow(keep, 4)
		rc.std, rc.clamp = 0.07, true
		rc.base = func(_, col int) float32 { return float32(1 - math.Pow(pos(col), e)) }
	case "time_mix_w0.weight":
		e := 0.85 + math.Sqrt(depth)
		rc.std = 1.4
		rc.base = func(_, col int) float32 { return float32(-5.8 + 6.25*math.Pow(pos(col), e)) }
	case "time_mix_a0.weight":
		rc.std = 0.2
		rc.base = func(_, col int) float32 { return float32(-0.38 * (1 - pos(col))) }
	case "time_mix_v0.weight":
		rc.std = 0.1
		rc.base = func(_, col int) float32 { return float32(0.95 - 0.41*pos(col)) }
	case "time_mix_k_k.weight":
		rc.std = 0.05
		rc.base = func(_, col int) float32 { return float32(0.76 - 0.1*pos(col)) }
	case "time_mix_k_a.weight":
		rc.std, rc.base = 0.1, constant(1)
	case "time_mix_r_k.weight":
		rc.std, rc.base = 0.2, constant(-0.04)
	case "time_mix_w1.weight", "time_mix_a1.weight", "time_mix_v1.weight", "time_mix_g1.weight",
		"time_mix_receptance.weight", "time_mix_value.weight", "time_mix_output.weight",
		"channel_mix_key.weight":
		rc.std = invSqrt(D)
	case "time_mix_key.weight":
		rc.std = 0.5 * invSqrt(D)
	case "time_mix_w2.weight":
		rc.std = invSqrt(c.RankW)
	case "time_mix_a2.weight":
		rc.std = invSqrt(c.RankA)
	case "time_mix_v2.weight":
		rc.std = invSqrt(c.RankV)
	case "time_mix_g2.weight":
		rc.std = invSqrt(c.RankG)
	case "channel_mix_value.weight":
		rc.std = 0.5 * invSqrt(c.FFN)
	default:
		return rc, fmt.Errorf("synth: no value rule for tensor %q", suffix)
	}
	return rc, nil
}

// fillRow draws row r of a tensor into dst (one ne0-long row).
func (rc *recipe) fillRow(g *stream, r int, dst []float32) {
	g.normals(dst)
	for i, z := range dst {
		v := rc.std * z
		if rc.base != nil {
			v += rc.base(r, i)
		}
		if rc.clamp {
			v = min(max(v, 0), 1)
		}
		dst[i] = v
	}
}
