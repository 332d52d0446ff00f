package gguf

import (
	"fmt"
	"strconv"
	"strings"
)

// Type is a ggml tensor type id as stored in a GGUF tensor info.
type Type uint32

// The tensor types this package can dequantize (plus Q8_1 and Q8_K, which
// llama.cpp uses for activations and which this package only names).
const (
	F32  Type = 0  // float32
	F16  Type = 1  // IEEE binary16
	Q4_0 Type = 2  // 32 elements: f16 scale, 4-bit quants
	Q4_1 Type = 3  // 32 elements: f16 scale and min, 4-bit quants
	Q5_0 Type = 6  // 32 elements: f16 scale, 5-bit quants
	Q5_1 Type = 7  // 32 elements: f16 scale and min, 5-bit quants
	Q8_0 Type = 8  // 32 elements: f16 scale, int8 quants
	Q8_1 Type = 9  // 32 elements: activation format (not supported as weights)
	Q2_K Type = 10 // 256 elements: 2-bit quants, 4-bit scales and mins
	Q3_K Type = 11 // 256 elements: 3-bit quants, 6-bit signed scales
	Q4_K Type = 12 // 256 elements: 4-bit quants, 6-bit scales and mins
	Q5_K Type = 13 // 256 elements: 5-bit quants, 6-bit scales and mins
	Q6_K Type = 14 // 256 elements: 6-bit quants, int8 scales
	Q8_K Type = 15 // 256 elements: activation format (not supported as weights)
	BF16 Type = 30 // bfloat16
)

// typeTraits describes one ggml type. A zero blockElems means the type id is
// unknown or retired, so that the byte size of its tensors cannot be
// computed. A nil dequant means the type is known but not supported.
type typeTraits struct {
	name       string
	blockElems int
	blockBytes int
	dequant    func(src []byte, dst []float32) // whole blocks; len(src) matches len(dst)
	quant      func(src []float32, dst []byte) // whole blocks; len(dst) matches len(src)
}

const qkK = 256 // elements in a K-quant super-block

// traitsTable is indexed by type id. Ids 4, 5, 31-33 and 36-38 are retired
// and left empty.
var traitsTable = [...]typeTraits{
	F32:  {"F32", 1, 4, dequantF32, quantF32},
	F16:  {"F16", 1, 2, dequantF16, quantF16},
	Q4_0: {"Q4_0", 32, 18, dequantQ4_0, quantQ4_0},
	Q4_1: {"Q4_1", 32, 20, dequantQ4_1, quantQ4_1},
	Q5_0: {"Q5_0", 32, 22, dequantQ5_0, quantQ5_0},
	Q5_1: {"Q5_1", 32, 24, dequantQ5_1, quantQ5_1},
	Q8_0: {"Q8_0", 32, 34, dequantQ8_0, quantQ8_0},
	Q8_1: {"Q8_1", 32, 36, nil, nil},
	Q2_K: {"Q2_K", qkK, 84, dequantQ2_K, quantQ2_K},
	Q3_K: {"Q3_K", qkK, 110, dequantQ3_K, quantQ3_K},
	Q4_K: {"Q4_K", qkK, 144, dequantQ4_K, quantQ4_K},
	Q5_K: {"Q5_K", qkK, 176, dequantQ5_K, quantQ5_K},
	Q6_K: {"Q6_K", qkK, 210, dequantQ6_K, quantQ6_K},
	Q8_K: {"Q8_K", qkK, 292, nil, nil},
	16:   {"IQ2_XXS", qkK, 66, nil, nil},
	17:   {"IQ2_XS", qkK, 74, nil, nil},
	18:   {"IQ3_XXS", qkK, 98, nil, nil},
	19:   {"IQ1_S", qkK, 50, nil, nil},
	20:   {"IQ4_NL", 32, 18, nil, nil},
	21:   {"IQ3_S", qkK, 110, nil, nil},
	22:   {"IQ2_S", qkK, 82, nil, nil},
	23:   {"IQ4_XS", qkK, 136, nil, nil},
	24:   {"I8", 1, 1, nil, nil},
	25:   {"I16", 1, 2, nil, nil},
	26:   {"I32", 1, 4, nil, nil},
	27:   {"I64", 1, 8, nil, nil},
	28:   {"F64", 1, 8, nil, nil},
	29:   {"IQ1_M", qkK, 56, nil, nil},
	BF16: {"BF16", 1, 2, dequantBF16, quantBF16},
	34:   {"TQ1_0", qkK, 54, nil, nil},
	35:   {"TQ2_0", qkK, 66, nil, nil},
	39:   {"MXFP4", 32, 17, nil, nil},
	40:   {"NVFP4", 64, 36, nil, nil},
	41:   {"Q1_0", 128, 18, nil, nil},
	42:   {"Q2_0", 64, 18, nil, nil},
}

// SupportedTypes lists the 13 weight formats this package dequantizes and
// quantizes, in a stable order.
var SupportedTypes = []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K}

// traits returns the table row of t, or nil when the id is unknown or retired.
func (t Type) traits() *typeTraits {
	if uint64(t) >= uint64(len(traitsTable)) || traitsTable[t].blockElems == 0 {
		return nil
	}
	return &traitsTable[t]
}

// String returns the ggml name of the type ("Q4_K", "IQ4_XS", ...) or
// "type(N)" for an unknown id.
func (t Type) String() string {
	if tr := t.traits(); tr != nil {
		return tr.name
	}
	return "type(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Supported reports whether the type is one of the 13 weight formats that
// DequantizeRow and QuantizeRow handle.
func (t Type) Supported() bool {
	tr := t.traits()
	return tr != nil && tr.dequant != nil
}

// BlockElems returns the number of elements per block (1 for F32, F16 and
// BF16, 32 for Q4_0..Q8_0, 256 for the K-quants), or 0 when the type is not
// supported.
func (t Type) BlockElems() int {
	if !t.Supported() {
		return 0
	}
	return traitsTable[t].blockElems
}

// BlockBytes returns the number of bytes per block, or 0 when the type is
// not supported.
func (t Type) BlockBytes() int {
	if !t.Supported() {
		return 0
	}
	return traitsTable[t].blockBytes
}

// RowBytes returns the byte size of n consecutive elements of type t. It
// fails when the type is not supported, n is negative or not a multiple of
// the block size, or the size overflows an int.
func (t Type) RowBytes(n int) (int, error) {
	if !t.Supported() {
		return 0, fmt.Errorf("gguf: type %s (id %d): %w", t, uint32(t), ErrUnsupportedType)
	}
	tr := &traitsTable[t]
	if n < 0 || n%tr.blockElems != 0 {
		return 0, fmt.Errorf("gguf: %d elements is not a multiple of the %s block size %d", n, t, tr.blockElems)
	}
	blocks := n / tr.blockElems
	if blocks > maxInt/tr.blockBytes {
		return 0, fmt.Errorf("gguf: %d elements of %s overflow the address space", n, t)
	}
	return blocks * tr.blockBytes, nil
}

// knownSize returns the block geometry of any type whose byte size is known,
// supported or not.
func (t Type) knownSize() (elems, bytes int, ok bool) {
	tr := t.traits()
	if tr == nil {
		return 0, 0, false
	}
	return tr.blockElems, tr.blockBytes, true
}

// ParseType returns the type with the given ggml name, case-insensitively
// ("q4_k", "F16", "bf16", "iq4_xs"). Known but unsupported names parse too;
// check Supported before using the result.
func ParseType(name string) (Type, error) {
	for id := range traitsTable {
		tr := &traitsTable[id]
		if tr.blockElems != 0 && strings.EqualFold(tr.name, name) {
			return Type(id), nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type name %q", name)
}

const maxInt = int(^uint(0) >> 1)
