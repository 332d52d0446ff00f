package gguf

import (
	"errors"
	"fmt"
)

// ErrKeyNotFound is wrapped by the typed getters of File when the key is
// absent.
var ErrKeyNotFound = errors.New("not found")

// ErrUnsupportedType is wrapped by every error about a tensor type that this
// package cannot decode: an unknown or retired type id while parsing, a known
// but unsupported type (IQ4_XS, ...) in TensorData, DequantizeRow and
// friends. Its text reads naturally at the end of a message: `tensor "x" has
// type IQ4_XS (id 23), not supported`.
var ErrUnsupportedType = errors.New("not supported")

// FormatError reports malformed GGUF content: which file, the byte offset of
// the offending field, the field, and what was expected.
type FormatError struct {
	File   string // file name as given to Open or Parse
	Offset int64  // absolute byte offset of the field in the file
	Field  string // the field, e.g. `header version` or `tensor "blk.0.x" dims`
	Msg    string // what is wrong
	Err    error  // optional cause (io.ErrUnexpectedEOF, ErrUnsupportedType, an I/O error)
}

// Error formats the error as
// `gguf: FILE: offset N (FIELD): MSG`.
func (e *FormatError) Error() string {
	return fmt.Sprintf("gguf: %s: offset %d (%s): %s", e.File, e.Offset, e.Field, e.Msg)
}

// Unwrap returns the cause, if any.
func (e *FormatError) Unwrap() error { return e.Err }
