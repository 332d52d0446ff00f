package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// decoder reads the GGUF header sequentially, either from an in-memory image
// (a memory mapping) or through a window buffer over an io.ReaderAt. Every
// read is checked against the file size first, so a count or length read
// from the file can never make it allocate more than the bytes left.
type decoder struct {
	name string
	data []byte // whole file when mapped; nil otherwise
	r    io.ReaderAt
	size int64
	off  int64

	buf    []byte // window of the file starting at bufOff (ReaderAt mode)
	bufOff int64

	field string // current field, for error messages
}

const windowSize = 64 << 10

// errorf returns a FormatError at offset off for the current field.
func (d *decoder) errorf(off int64, format string, args ...any) *FormatError {
	return &FormatError{File: d.name, Offset: off, Field: d.field, Msg: fmt.Sprintf(format, args...)}
}

// left returns the number of bytes between the cursor and the end of file.
func (d *decoder) left() int64 { return d.size - d.off }

// read returns the next n bytes and advances. The slice is only valid until
// the next call.
func (d *decoder) read(n int64) ([]byte, error) {
	if n < 0 || n > d.left() {
		e := d.errorf(d.off, "file truncated: need %d bytes, %d left", uint64(n), d.left())
		e.Err = io.ErrUnexpectedEOF
		return nil, e
	}
	start := d.off
	d.off += n
	if d.data != nil {
		return d.data[start : start+n : start+n], nil
	}
	if start >= d.bufOff && start+n <= d.bufOff+int64(len(d.buf)) {
		return d.buf[start-d.bufOff : start-d.bufOff+n], nil
	}
	if n > windowSize {
		if n > int64(maxInt) {
			return nil, d.errorf(start, "%d bytes do not fit in memory on this platform", n)
		}
		b := make([]byte, n)
		if err := d.readAt(b, start); err != nil {
			return nil, err
		}
		return b, nil
	}
	if d.buf == nil {
		d.buf = make([]byte, windowSize)
	}
	m := min(int64(windowSize), d.size-start)
	d.buf = d.buf[:m]
	d.bufOff = start
	if err := d.readAt(d.buf, start); err != nil {
		// The window reaches past what is needed now; retry with exactly
		// n bytes so that an error is reported at the field it hits.
		d.buf = d.buf[:n]
		if err := d.readAt(d.buf, start); err != nil {
			d.buf = d.buf[:0]
			return nil, err
		}
	}
	return d.buf[:n], nil
}

func (d *decoder) readAt(b []byte, off int64) error {
	n, err := d.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	e := d.errorf(off+int64(n), "read error: %v", err)
	e.Err = err
	return e
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.read(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a uint64 count of items of at least minSize bytes each and
// checks that that many items can fit in the rest of the file.
func (d *decoder) count(what string, minSize int) (int, error) {
	at := d.off
	n, err := d.u64()
	if err != nil {
		return 0, err
	}
	if n > uint64(d.left())/uint64(minSize) || n > uint64(maxInt) {
		return 0, d.errorf(at, "%s %d cannot fit in the %d bytes left in the file (each item takes at least %d bytes)", what, n, d.left(), minSize)
	}
	return int(n), nil
}

// str reads a GGUF string (uint64 length, bytes).
func (d *decoder) str() (string, error) {
	at := d.off
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(d.left()) {
		e := d.errorf(at, "string length %d exceeds the %d bytes left in the file", n, d.left())
		e.Err = io.ErrUnexpectedEOF
		return "", e
	}
	b, err := d.read(int64(n))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// scalar reads one non-array value of type t.
func (d *decoder) scalar(t ValueType) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		x, err := d.u8()
		return int8(x), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		x, err := d.u16()
		return int16(x), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		x, err := d.u32()
		return int32(x), err
	case TypeFloat32:
		x, err := d.u32()
		return math.Float32frombits(x), err
	case TypeBool:
		// Any non-zero byte is true, as in llama.cpp.
		x, err := d.u8()
		return x != 0, err
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		x, err := d.u64()
		return int64(x), err
	case TypeFloat64:
		x, err := d.u64()
		return math.Float64frombits(x), err
	}
	return nil, d.errorf(d.off, "unknown value type %d", uint32(t))
}

// value reads a value of type t (the type id has already been read at
// typeAt).
func (d *decoder) value(t ValueType, typeAt int64) (Value, error) {
	if !t.valid() {
		return Value{}, d.errorf(typeAt, "unknown value type %d (valid: 0..12)", uint32(t))
	}
	if t != TypeArray {
		x, err := d.scalar(t)
		if err != nil {
			return Value{}, err
		}
		return Value{typ: t, v: x}, nil
	}
	elemAt := d.off
	e32, err := d.u32()
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(e32)
	switch {
	case elem == TypeArray:
		return Value{}, d.errorf(elemAt, "nested arrays are not supported")
	case !elem.valid():
		return Value{}, d.errorf(elemAt, "unknown array element type %d (valid: 0..8, 10..12)", e32)
	}
	n, err := d.count("array length", elem.minSize())
	if err != nil {
		return Value{}, err
	}
	v := Value{typ: TypeArray, elem: elem}
	switch elem {
	case TypeString:
		v.v, err = readArray(d, n, (*decoder).str)
	case TypeUint8:
		v.v, err = readArray(d, n, (*decoder).u8)
	case TypeInt8:
		v.v, err = readArray(d, n, func(d *decoder) (int8, error) { x, err := d.u8(); return int8(x), err })
	case TypeUint16:
		v.v, err = readArray(d, n, (*decoder).u16)
	case TypeInt16:
		v.v, err = readArray(d, n, func(d *decoder) (int16, error) { x, err := d.u16(); return int16(x), err })
	case TypeUint32:
		v.v, err = readArray(d, n, (*decoder).u32)
	case TypeInt32:
		v.v, err = readArray(d, n, func(d *decoder) (int32, error) { x, err := d.u32(); return int32(x), err })
	case TypeFloat32:
		v.v, err = readArray(d, n, func(d *decoder) (float32, error) { x, err := d.u32(); return math.Float32frombits(x), err })
	case TypeBool:
		v.v, err = readArray(d, n, func(d *decoder) (bool, error) { x, err := d.u8(); return x != 0, err })
	case TypeUint64:
		v.v, err = readArray(d, n, (*decoder).u64)
	case TypeInt64:
		v.v, err = readArray(d, n, func(d *decoder) (int64, error) { x, err := d.u64(); return int64(x), err })
	case TypeFloat64:
		v.v, err = readArray(d, n, func(d *decoder) (float64, error) { x, err := d.u64(); return math.Float64frombits(x), err })
	}
	if err != nil {
		return Value{}, err
	}
	return v, nil
}

// readArray reads n elements with next; n has been bounded by the file size.
func readArray[T any](d *decoder, n int, next func(*decoder) (T, error)) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		x, err := next(d)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}
