package gguf

import "math"

// finiteChunkElems bounds the elements dequantized at once by ScanNonFinite:
// at most 64 Ki elements (256 KiB of float32) whatever the tensor's size.
const finiteChunkElems = 1 << 16

// NonFinite is what ScanNonFinite found in one tensor.
type NonFinite struct {
	Count      uint64  // elements that dequantize to NaN or ±Inf
	First      uint64  // flat index (ne0 fastest) of the first one; valid when Count > 0
	FirstValue float32 // its value (NaN, +Inf or -Inf)
	Elements   uint64  // elements scanned
}

// ScanNonFinite dequantizes every element of ti with the reference
// dequantizers (DequantizeRow), a bounded chunk of whole blocks at a time,
// and counts those that are NaN or ±Inf: a model with such weights gives
// non-finite logits on every engine. It fails with ErrUnsupportedType for a
// type DequantizeRow does not handle and for a TensorInfo that does not fit
// this file.
func (f *File) ScanNonFinite(ti *TensorInfo) (NonFinite, error) {
	start, err := f.checkTensor(ti)
	if err != nil {
		return NonFinite{}, err
	}
	tr := ti.Type.traits()
	elems := ti.Elements()
	r := NonFinite{Elements: elems}
	if elems == 0 {
		return r, nil
	}
	blocks := elems / uint64(tr.blockElems) // checkTensor: whole blocks
	perChunk := uint64(max(1, finiteChunkElems/tr.blockElems))
	var raw []byte
	if f.data == nil {
		raw = make([]byte, min(perChunk, blocks)*uint64(tr.blockBytes))
	}
	vals := make([]float32, min(perChunk, blocks)*uint64(tr.blockElems))
	for b := uint64(0); b < blocks; b += perChunk {
		n := min(perChunk, blocks-b)
		nBytes := n * uint64(tr.blockBytes)
		var dst []byte
		if raw != nil {
			dst = raw[:nBytes]
		}
		src, err := f.readRange(ti, start+b*uint64(tr.blockBytes), nBytes, dst)
		if err != nil {
			return r, err
		}
		v := vals[:n*uint64(tr.blockElems)]
		tr.dequant(src, v)
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				if r.Count == 0 {
					r.First, r.FirstValue = b*uint64(tr.blockElems)+uint64(i), x
				}
				r.Count++
			}
		}
	}
	return r, nil
}
