package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// weightFormat says how one GGUF block format lives on the GPU: the WGSL
// function that reads it (shaders/formats.wgsl, dq8_<wgsl>) and the repacker
// that regroups the stored blocks into the planes that function reads. The
// bytes are the file's bytes, regrouped; nothing is expanded to float32.
type weightFormat struct {
	typ  gguf.Type
	wgsl string
	// repack turns n stored blocks (the rows of a matrix, back to back) into
	// the quants plane and the scales plane (nil when the format has none).
	repack func(src []byte, blocks int) (q, s []byte)
}

// formats lists the weight formats the GPU kernels can read.
var formats = map[gguf.Type]*weightFormat{
	gguf.F32:  {typ: gguf.F32, wgsl: "f32", repack: repackPlain},
	gguf.F16:  {typ: gguf.F16, wgsl: "f16", repack: repackPlain},
	gguf.BF16: {typ: gguf.BF16, wgsl: "bf16", repack: repackPlain},
	gguf.Q8_0: {typ: gguf.Q8_0, wgsl: "q8_0", repack: repackQ8_0},
	gguf.Q4_0: {typ: gguf.Q4_0, wgsl: "q4_0", repack: repackQ4_0},
	gguf.Q4_1: {typ: gguf.Q4_1, wgsl: "q4_1", repack: repackQ4_1},
	gguf.Q5_0: {typ: gguf.Q5_0, wgsl: "q5_0", repack: repackQ5_0},
	gguf.Q5_1: {typ: gguf.Q5_1, wgsl: "q5_1", repack: repackQ5_1},
	gguf.Q2_K: {typ: gguf.Q2_K, wgsl: "q2_k", repack: repackQ2_K},
	gguf.Q3_K: {typ: gguf.Q3_K, wgsl: "q3_k", repack: repackQ3_K},
	gguf.Q4_K: {typ: gguf.Q4_K, wgsl: "q4_k", repack: repackQ4_K},
	gguf.Q5_K: {typ: gguf.Q5_K, wgsl: "q5_k", repack: repackQ5_K},
	gguf.Q6_K: {typ: gguf.Q6_K, wgsl: "q6_k", repack: repackQ6_K},
}

// ErrUnsupportedOnGPU is wrapped by errors about tensor types the GPU
// kernels cannot read yet.
var ErrUnsupportedOnGPU = fmt.Errorf("not yet supported on the GPU")

// formatOf returns the GPU format of a matrix, or an error naming the tensor.
func formatOf(m *model.Matrix) (*weightFormat, error) {
	f, ok := formats[m.Type]
	if !ok {
		return nil, fmt.Errorf("gpu: tensor %s has type %s, which is %w (supported: %s)", m.Name, m.Type, ErrUnsupportedOnGPU, supportedList())
	}
	if m.Cols%8 != 0 || (m.Type.BlockElems() > 1 && m.Cols%32 != 0) {
		return nil, fmt.Errorf("gpu: tensor %s has %d columns; the GPU kernels need a multiple of 32: %w", m.Name, m.Cols, ErrUnsupportedOnGPU)
	}
	// K-quant rows are whole super-blocks in every file llama-quantize
	// writes; the kernels address super-blocks from the row start.
	if m.Type.BlockElems() == qkK && m.Cols%qkK != 0 {
		return nil, fmt.Errorf("gpu: tensor %s (%s) has %d columns; K-quants need a multiple of %d: %w", m.Name, m.Type, m.Cols, qkK, ErrUnsupportedOnGPU)
	}
	return f, nil
}

func supportedList() string {
	var names []string
	for t := range formats {
		names = append(names, t.String())
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// repackPlain keeps float formats as they are: one plane of values.
func repackPlain(src []byte, blocks int) (q, s []byte) { return src, nil }

// repackQ8_0 splits each 34-byte block (f16 d, 32 int8) into the int8 plane
// and the f16 scale plane.
func repackQ8_0(src []byte, blocks int) (q, s []byte) {
	q = make([]byte, 32*blocks)
	s = make([]byte, 2*blocks)
	for b := 0; b < blocks; b++ {
		blk := src[34*b : 34*b+34]
		copy(s[2*b:], blk[:2])
		copy(q[32*b:], blk[2:])
	}
	return q, s
}

// dq8Body generates the body of the kernels' dq8 function (placeholder
// DQ8_BODY) for the given formats: a direct call for one format, so that the
// inner loops carry no branch, else a switch on the format id.
func dq8Body(types []gguf.Type) string {
	if len(types) == 1 {
		return fmt.Sprintf("return dq8_%s(q, s, k, row, p);", formats[types[0]].wgsl)
	}
	var b strings.Builder
	b.WriteString("switch fmt {\n")
	for _, t := range types {
		fmt.Fprintf(&b, "        case %du: {\n            return dq8_%s(q, s, k, row, p);\n        }\n", uint32(t), formats[t].wgsl)
	}
	b.WriteString("        default: {\n            return W8(vec4<f32>(0.0), vec4<f32>(0.0));\n        }\n    }")
	return b.String()
}

// distinctTypes lists the distinct formats among types, sorted by id.
func distinctTypes(types []gguf.Type) []gguf.Type {
	out := slices.Clone(types)
	slices.Sort(out)
	return slices.Compact(out)
}
