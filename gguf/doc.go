// Package gguf reads and writes GGUF v2/v3 files (the container llama.cpp
// uses) and dequantizes every block format an rwkv7 file may hold.
//
// It imports nothing of this project.
//
// # Reading
//
// Open memory-maps a file and parses its header (metadata and tensor table);
// Parse does the same from any io.ReaderAt. Every count and length read from
// the file is bounded by the bytes left before anything is allocated, and
// every problem is reported as a *FormatError naming the file, the byte
// offset and the field. The reader follows llama.cpp where it is strict
// (versions 2 and 3 only, byte-swapped files refused, unique non-empty keys
// and tensor names of at most 63 bytes, 1..4 dims, general.alignment a UINT32
// power of two, aligned offsets, no nested arrays) and is tolerant where
// llama.cpp's format allows it: tensor offsets need only be aligned, inside
// the file and non-overlapping (llama.cpp additionally wants them dense and
// in file order, which Writer produces), and a BOOL byte other than 0 reads
// as true, as in llama.cpp.
//
// Tensor types: an id whose block size is unknown (retired or newer than
// this package) is rejected by Parse, since the tensor cannot be sized. A
// known type that this package cannot decode (IQ4_XS, Q8_K, F64, ...) parses,
// so that tools can list the file, and TensorData, ReadTensorRows and
// DequantizeRow then fail with an error wrapping ErrUnsupportedType:
// `tensor "x" has type IQ4_XS (id 23), not supported`.
//
// # Dequantizing
//
// DequantizeRow implements the 13 weight formats of SupportedTypes exactly
// as ggml does (bit for bit); QuantizeRow provides simple deterministic
// reference encoders for synthetic models and tests.
//
// # Writing
//
// Writer produces files llama.cpp accepts, streaming tensor data so that
// multi-gigabyte files need not be held in memory.
package gguf
