package model

import (
	"sort"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// TypeCount is one row of a tensor-type histogram.
type TypeCount struct {
	Type     gguf.Type
	Tensors  int
	Elements uint64
	Bytes    uint64
}

// TypeHistogram counts the tensors of f per storage type, largest byte
// count first.
func TypeHistogram(f *gguf.File) []TypeCount {
	byType := map[gguf.Type]*TypeCount{}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		tc := byType[ti.Type]
		if tc == nil {
			tc = &TypeCount{Type: ti.Type}
			byType[ti.Type] = tc
		}
		tc.Tensors++
		tc.Elements += ti.Elements()
		tc.Bytes += ti.Size
	}
	out := make([]TypeCount, 0, len(byType))
	for _, tc := range byType {
		out = append(out, *tc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Type < out[j].Type
	})
	return out
}

// ParamCount is the number of elements of all tensors in f (as llama.cpp
// counts parameters: every tensor in the file).
func ParamCount(f *gguf.File) uint64 {
	var n uint64
	for i := range f.Tensors {
		n += f.Tensors[i].Elements()
	}
	return n
}

// MemoryEstimate is what running a model on the CPU reference needs, in
// bytes. (The GPU engine plans its own memory: gpu/engine.PlanMemory.)
type MemoryEstimate struct {
	Weights     int64 // tensor data (the file is memory-mapped and paged in on use)
	State       int64 // recurrent state of the sequences
	Activations int64 // per-token vectors and logits
}

// Total is the sum of the parts.
func (m MemoryEstimate) Total() int64 { return m.Weights + m.State + m.Activations }

// EstimateCPUMemory returns the memory needed to run f's model on the CPU
// reference with seqs sequences: the mapped tensor bytes, one state per
// sequence and the per-token activation vectors of one chunk of prefill.
func EstimateCPUMemory(f *gguf.File, c Config, seqs int) MemoryEstimate {
	seqs = max(seqs, 1)
	var m MemoryEstimate
	for i := range f.Tensors {
		m.Weights += int64(f.Tensors[i].Size)
	}
	m.State = int64(seqs) * c.StateBytes()
	// Per token: x, xa, six mixed inputs, r, k, v, w, a, g, kk, y, v_first,
	// LoRA intermediates (R_w+R_a+R_v+R_g), FFN hidden F; logits V.
	perToken := int64(4 * (16*c.Dim + c.RankW + c.RankA + c.RankV + c.RankG + c.FFN))
	m.Activations = int64(seqs) * (perToken + int64(4*c.Vocab))
	return m
}
