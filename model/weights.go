package model

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// Matrix is a 2-D weight in its stored form: Rows × Cols, row-major, each row
// RowBytes bytes of Type's blocks (ggml ne = {Cols, Rows}). Data points into
// the memory-mapped file; it is never expanded to float32 as a whole.
type Matrix struct {
	Name     string
	Type     gguf.Type
	Rows     int
	Cols     int
	RowBytes int
	Data     []byte
}

// Row returns the stored bytes of row r.
func (m *Matrix) Row(r int) []byte {
	return m.Data[r*m.RowBytes : (r+1)*m.RowBytes]
}

// Bytes is the size of the stored matrix.
func (m *Matrix) Bytes() int64 { return int64(m.Rows) * int64(m.RowBytes) }

// Layer holds the weights of one RWKV-7 block. 1-D tensors are dequantized
// to float32 (they are small); matrices stay in their stored form.
type Layer struct {
	Ln1W, Ln1B []float32 // attn_norm: [D]
	Ln2W, Ln2B []float32 // attn_norm_2: [D]

	// Lerp holds the six token-shift mix rows of time_mix_lerp_fused in file
	// order r, w, k, v, a, g: [6][D].
	Lerp [6][]float32

	W0     []float32 // decay bias: [D]
	W1, W2 Matrix    // decay LoRA: R_w×D, D×R_w
	A0     []float32 // iclr bias: [D]
	A1, A2 Matrix    // iclr LoRA: R_a×D, D×R_a
	V0     []float32 // value-residual bias: [D] (unused in layer 0)
	V1, V2 Matrix    // value-residual LoRA: R_v×D, D×R_v (unused in layer 0)
	G1, G2 Matrix    // gate LoRA: R_g×D, D×R_g

	KK, KA, RK []float32 // k_k, k_a, r_k: [D]

	Wr, Wk, Wv, Wo Matrix    // receptance, key, value, output: D×D
	LnXW, LnXB     []float32 // ln_x group norm affine: [D]

	FfnLerp  []float32 // channel_mix_lerp_k: [D]
	FfnKey   Matrix    // F×D
	FfnValue Matrix    // D×F
}

// Lerp row indices of time_mix_lerp_fused.
const (
	MixR = iota
	MixW
	MixK
	MixV
	MixA
	MixG
)

// Weights is a validated RWKV-7 model: configuration and every tensor, bound
// to the open GGUF file it was read from.
type Weights struct {
	Config Config
	File   *gguf.File

	Embed        Matrix    // token_embd: V×D
	Ln0W, Ln0B   []float32 // token_embd_norm: [D]
	LnOutW       []float32 // output_norm: [D]
	LnOutB       []float32
	Head         Matrix // output: V×D
	Layers       []Layer
	TensorsBytes int64 // bytes of all tensor data in the file
}

// Load reads the configuration of f, validates its tensor table and binds
// every tensor. Matrices keep pointing into f, so f must stay open while the
// weights are used.
func Load(f *gguf.File) (*Weights, error) {
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if err := Validate(f, c); err != nil {
		return nil, err
	}
	w := &Weights{Config: c, File: f, Layers: make([]Layer, c.Layers)}
	for i := range f.Tensors {
		w.TensorsBytes += int64(f.Tensors[i].Size)
	}
	b := binder{f: f}
	w.Embed = b.matrix(TensorEmbed)
	w.Ln0W, w.Ln0B = b.vector(TensorLn0W), b.vector(TensorLn0B)
	w.LnOutW, w.LnOutB = b.vector(TensorLnOutW), b.vector(TensorLnOutB)
	w.Head = b.matrix(TensorHead)
	for l := range w.Layers {
		n := func(s string) string { return LayerTensor(l, s) }
		L := &w.Layers[l]
		L.Ln1W, L.Ln1B = b.vector(n("attn_norm.weight")), b.vector(n("attn_norm.bias"))
		L.Ln2W, L.Ln2B = b.vector(n("attn_norm_2.weight")), b.vector(n("attn_norm_2.bias"))
		lerp := b.vector(n("time_mix_lerp_fused.weight"))
		if b.err == nil {
			for k := 0; k < 6; k++ {
				L.Lerp[k] = lerp[k*c.Dim : (k+1)*c.Dim]
			}
		}
		L.W0, L.W1, L.W2 = b.vector(n("time_mix_w0.weight")), b.matrix(n("time_mix_w1.weight")), b.matrix(n("time_mix_w2.weight"))
		L.A0, L.A1, L.A2 = b.vector(n("time_mix_a0.weight")), b.matrix(n("time_mix_a1.weight")), b.matrix(n("time_mix_a2.weight"))
		L.V0, L.V1, L.V2 = b.vector(n("time_mix_v0.weight")), b.matrix(n("time_mix_v1.weight")), b.matrix(n("time_mix_v2.weight"))
		L.G1, L.G2 = b.matrix(n("time_mix_g1.weight")), b.matrix(n("time_mix_g2.weight"))
		L.KK, L.KA, L.RK = b.vector(n("time_mix_k_k.weight")), b.vector(n("time_mix_k_a.weight")), b.vector(n("time_mix_r_k.weight"))
		L.Wr, L.Wk = b.matrix(n("time_mix_receptance.weight")), b.matrix(n("time_mix_key.weight"))
		L.Wv, L.Wo = b.matrix(n("time_mix_value.weight")), b.matrix(n("time_mix_output.weight"))
		L.LnXW, L.LnXB = b.vector(n("time_mix_ln.weight")), b.vector(n("time_mix_ln.bias"))
		L.FfnLerp = b.vector(n("channel_mix_lerp_k.weight"))
		L.FfnKey, L.FfnValue = b.matrix(n("channel_mix_key.weight")), b.matrix(n("channel_mix_value.weight"))
	}
	if b.err != nil {
		return nil, b.err
	}
	return w, nil
}

// binder reads tensors by name and remembers the first error, so Load can
// list every tensor plainly.
type binder struct {
	f   *gguf.File
	err error
}

func (b *binder) data(name string) (*gguf.TensorInfo, []byte) {
	if b.err != nil {
		return nil, nil
	}
	ti, ok := b.f.Tensor(name)
	if !ok {
		b.err = fmt.Errorf("model: %s: missing tensor %s", b.f.Path, name)
		return nil, nil
	}
	data, err := b.f.TensorData(ti)
	if err != nil {
		b.err = fmt.Errorf("model: %s: tensor %s: %w", b.f.Path, name, err)
		return nil, nil
	}
	return ti, data
}

// vector dequantizes a tensor of any supported type to float32.
func (b *binder) vector(name string) []float32 {
	ti, data := b.data(name)
	if ti == nil {
		return nil
	}
	out := make([]float32, ti.Elements())
	if err := gguf.DequantizeRow(ti.Type, data, out); err != nil {
		b.err = fmt.Errorf("model: %s: tensor %s: %w", b.f.Path, name, err)
		return nil
	}
	return out
}

// matrix binds a 2-D tensor in its stored form.
func (b *binder) matrix(name string) Matrix {
	ti, data := b.data(name)
	if ti == nil {
		return Matrix{}
	}
	cols, rows := int(ti.Ne(0)), int(ti.Ne(1))
	rowBytes, err := ti.Type.RowBytes(cols)
	if err != nil {
		b.err = fmt.Errorf("model: %s: tensor %s: %w", b.f.Path, name, err)
		return Matrix{}
	}
	if len(data) != rows*rowBytes {
		b.err = fmt.Errorf("model: %s: tensor %s: %d bytes of data, expected %d rows of %d", b.f.Path, name, len(data), rows, rowBytes)
		return Matrix{}
	}
	return Matrix{Name: name, Type: ti.Type, Rows: rows, Cols: cols, RowBytes: rowBytes, Data: data}
}

// Matrices lists every matrix the forward pass reads per token, with the
// layer-0 dummy value-residual LoRA left out. The embedding is not included
// (it is a row lookup).
func (w *Weights) Matrices() []*Matrix {
	var out []*Matrix
	for l := range w.Layers {
		L := &w.Layers[l]
		out = append(out, &L.Wr, &L.Wk, &L.Wv, &L.Wo, &L.W1, &L.W2, &L.A1, &L.A2, &L.G1, &L.G2)
		if l > 0 {
			out = append(out, &L.V1, &L.V2)
		}
		out = append(out, &L.FfnKey, &L.FfnValue)
	}
	return append(out, &w.Head)
}
