package gguf

import "fmt"

// DequantizeRow decodes len(dst) elements of type t from src into dst.
// len(dst) must be a multiple of t's block size and len(src) must equal
// t.RowBytes(len(dst)). Any number of whole blocks may be decoded at once, so
// a "row" may span several tensor rows. The result is bit-identical to
// ggml's dequantize_row_* for every supported type.
func DequantizeRow(t Type, src []byte, dst []float32) error {
	tr, err := rowCheck("dequantize", t, len(src), len(dst))
	if err != nil {
		return err
	}
	tr.dequant(src, dst)
	return nil
}

// QuantizeRow encodes the len(src) values of src as type t into dst, whose
// length must be t.RowBytes(len(src)). The quantizers are simple and
// deterministic reference encoders (they do not reproduce llama.cpp's
// search for the best scales); they exist to build synthetic models and test
// blocks. Non-finite inputs give unspecified (but memory-safe) output for the
// block formats.
func QuantizeRow(t Type, src []float32, dst []byte) error {
	tr, err := rowCheck("quantize", t, len(dst), len(src))
	if err != nil {
		return err
	}
	tr.quant(src, dst)
	return nil
}

// rowCheck validates the type and the buffer sizes of a row conversion.
func rowCheck(op string, t Type, nBytes, nElems int) (*typeTraits, error) {
	if !t.Supported() {
		return nil, fmt.Errorf("gguf: %s %s (id %d): %w", op, t, uint32(t), ErrUnsupportedType)
	}
	tr := &traitsTable[t]
	if nElems%tr.blockElems != 0 {
		return nil, fmt.Errorf("gguf: %s %s: %d elements is not a multiple of the block size %d", op, t, nElems, tr.blockElems)
	}
	if want := nElems / tr.blockElems * tr.blockBytes; nBytes != want {
		return nil, fmt.Errorf("gguf: %s %s: %d elements take %d bytes, got a buffer of %d bytes", op, t, nElems, want, nBytes)
	}
	return tr, nil
}
