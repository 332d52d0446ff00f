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

// DeviceKind names where a model runs, for memory estimates.
type DeviceKind string

// Device kinds known to EstimateMemory.
const (
	DeviceCPU DeviceKind = "cpu"
	DeviceGPU DeviceKind = "gpu"
)

// MemoryEstimate is what running a model needs on one device, in bytes.
type MemoryEstimate struct {
	Weights     int64 // tensor data resident on the device
	State       int64 // recurrent state of the sequences
	Activations int64 // scratch buffers and logits
}

// Total is the sum of the parts.
func (m MemoryEstimate) Total() int64 { return m.Weights + m.State + m.Activations }

// EstimateMemory returns the memory needed to run f's model on a device of
// the given kind with seqs sequences and prefill chunks of up to chunk
// tokens, from the file's real tensor types.
//
// CPU: the file is memory-mapped (weights = tensor bytes, paged in on use),
// plus one state per sequence and per-token activation vectors.
// GPU: matrices are uploaded in their stored blocks (padded to 4 bytes),
// 1-D tensors as float32, plus state, activations for a chunk of tokens, and
// the logits of one chunk.
func EstimateMemory(f *gguf.File, c Config, kind DeviceKind, seqs, chunk int) MemoryEstimate {
	if seqs < 1 {
		seqs = 1
	}
	if chunk < 1 {
		chunk = 1
	}
	var m MemoryEstimate
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		switch {
		case kind == DeviceGPU && ti.Ne(1) == 1 && ti.Ne(2) == 1 && ti.Ne(3) == 1:
			m.Weights += 4 * int64(ti.Elements())
		case kind == DeviceGPU && ti.Name == "blk.0.time_mix_v1.weight", kind == DeviceGPU && ti.Name == "blk.0.time_mix_v2.weight":
			// Layer 0's dummy value-residual LoRA is never uploaded.
		default:
			m.Weights += (int64(ti.Size) + 3) &^ 3
		}
	}
	m.State = int64(seqs) * c.StateBytes()
	// Per token: x, xa, six mixed inputs, r, k, v, w, a, g, kk, y, v_first,
	// LoRA intermediates (R_w+R_a+R_v+R_g), FFN hidden F; logits V.
	perToken := int64(4 * (16*c.Dim + c.RankW + c.RankA + c.RankV + c.RankG + c.FFN))
	rows := int64(seqs)
	if kind == DeviceGPU {
		rows = int64(seqs * chunk)
	}
	m.Activations = rows*perToken + rows*int64(4*c.Vocab)
	return m
}
