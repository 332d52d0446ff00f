package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
)

// Writer builds a GGUF file: metadata in the order set, tensors in the
// order added, with dense offsets in file order (as llama.cpp requires) and
// every tensor's data padded to the alignment. Tensor data can be given as
// bytes or streamed at write time, so multi-gigabyte files need not be held
// in memory.
type Writer struct {
	version     uint32
	alignment   uint32
	kvs         []KV
	kvIndex     map[string]int
	tensors     []writerTensor
	tensorIndex map[string]bool
	err         error // first invalid Set; reported by WriteTo
}

type writerTensor struct {
	info TensorInfo
	data []byte
	fill func(io.Writer) error
}

// NewWriter returns a Writer for a version 3 file with alignment 32 (no
// general.alignment key is written unless SetAlignment is called).
func NewWriter() *Writer {
	return &Writer{
		version:     3,
		alignment:   defaultAlignment,
		kvIndex:     map[string]int{},
		tensorIndex: map[string]bool{},
	}
}

// SetVersion selects the file version, 2 or 3 (the layouts are identical
// for little-endian files). Another version makes WriteTo fail.
func (w *Writer) SetVersion(v uint32) {
	if v != 2 && v != 3 {
		w.fail(fmt.Errorf("gguf: writer: version %d is not supported, expected 2 or 3", v))
		return
	}
	w.version = v
}

// SetAlignment sets the data alignment (a power of two) and writes it as the
// general.alignment key.
func (w *Writer) SetAlignment(a uint32) {
	w.Set(alignmentKey, Uint32Value(a))
}

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Set adds a metadata key, or replaces the value of an existing key in
// place. An empty key or an invalid value makes WriteTo fail. Setting
// general.alignment also changes the alignment used for tensor data; it must
// be a UINT32 power of two.
func (w *Writer) Set(key string, v Value) {
	if err := checkValue(v); err != nil {
		w.fail(fmt.Errorf("gguf: writer: key %q: %w", key, err))
		return
	}
	if key == "" {
		w.fail(errors.New("gguf: writer: empty key"))
		return
	}
	if key == alignmentKey {
		a, ok := v.v.(uint32)
		if v.typ != TypeUint32 || !ok || a == 0 || a&(a-1) != 0 {
			w.fail(fmt.Errorf("gguf: writer: %s must be a UINT32 power of two, got %s %v", alignmentKey, v.typeString(), v))
			return
		}
		w.alignment = a
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kvs[i].Value = v
		return
	}
	w.kvIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: v})
}

// checkValue verifies that v's Go value matches its type.
func checkValue(v Value) error {
	if v.v == nil || !v.typ.valid() {
		return errors.New("invalid (zero) value")
	}
	if v.typ == TypeArray {
		if !v.elem.valid() || v.elem == TypeArray {
			return fmt.Errorf("array element type %s is not supported", v.elem)
		}
		if reflect.TypeOf(v.v) != reflect.SliceOf(valueTraits[v.elem].goType) {
			return fmt.Errorf("array of %s holds a %T", v.elem, v.v)
		}
		return nil
	}
	if reflect.TypeOf(v.v) != valueTraits[v.typ].goType {
		return fmt.Errorf("%s value holds a %T", v.typ, v.v)
	}
	return nil
}

// SetString sets a STRING key.
func (w *Writer) SetString(key, v string) { w.Set(key, StringValue(v)) }

// SetUint32 sets a UINT32 key.
func (w *Writer) SetUint32(key string, v uint32) { w.Set(key, Uint32Value(v)) }

// SetInt32 sets an INT32 key.
func (w *Writer) SetInt32(key string, v int32) { w.Set(key, Int32Value(v)) }

// SetUint64 sets a UINT64 key.
func (w *Writer) SetUint64(key string, v uint64) { w.Set(key, Uint64Value(v)) }

// SetFloat32 sets a FLOAT32 key.
func (w *Writer) SetFloat32(key string, v float32) { w.Set(key, Float32Value(v)) }

// SetBool sets a BOOL key.
func (w *Writer) SetBool(key string, v bool) { w.Set(key, BoolValue(v)) }

// SetStrings sets an ARRAY of STRING key.
func (w *Writer) SetStrings(key string, v []string) { w.Set(key, StringsValue(v)) }

// SetInt32s sets an ARRAY of INT32 key.
func (w *Writer) SetInt32s(key string, v []int32) { w.Set(key, Int32sValue(v)) }

// SetUint32s sets an ARRAY of UINT32 key.
func (w *Writer) SetUint32s(key string, v []uint32) { w.Set(key, Uint32sValue(v)) }

// SetFloat32s sets an ARRAY of FLOAT32 key.
func (w *Writer) SetFloat32s(key string, v []float32) { w.Set(key, Float32sValue(v)) }

// addTensor validates a tensor and returns its info (offset not yet set).
func (w *Writer) addTensor(name string, t Type, dims []uint64) (TensorInfo, error) {
	switch {
	case name == "":
		return TensorInfo{}, errors.New("gguf: writer: empty tensor name")
	case len(name) > maxNameLen:
		return TensorInfo{}, fmt.Errorf("gguf: writer: tensor name %q is %d bytes, at most %d allowed", name, len(name), maxNameLen)
	case w.tensorIndex[name]:
		return TensorInfo{}, fmt.Errorf("gguf: writer: duplicate tensor %q", name)
	case len(dims) == 0 || len(dims) > maxDims:
		return TensorInfo{}, fmt.Errorf("gguf: writer: tensor %q has %d dims, expected 1..%d", name, len(dims), maxDims)
	}
	for i, d := range dims {
		if d > math.MaxInt64 {
			return TensorInfo{}, fmt.Errorf("gguf: writer: tensor %q: ne%d %d is too large", name, i, d)
		}
	}
	size, err := tensorBytes(dims, t)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("gguf: writer: tensor %q: %w", name, err)
	}
	return TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Size: size}, nil
}

// AddTensor adds a tensor whose data is given; len(data) must equal its
// byte size. The data is not copied and must not change before WriteTo.
// Any type whose block size is known may be written, supported or not.
func (w *Writer) AddTensor(name string, t Type, dims []uint64, data []byte) error {
	ti, err := w.addTensor(name, t, dims)
	if err != nil {
		return err
	}
	if uint64(len(data)) != ti.Size {
		return fmt.Errorf("gguf: writer: tensor %q %s %s needs %d bytes, got %d", name, t, ti.ShapeString(), ti.Size, len(data))
	}
	w.tensorIndex[name] = true
	w.tensors = append(w.tensors, writerTensor{info: ti, data: data})
	return nil
}

// AddTensorFunc adds a tensor whose data fill streams at write time. fill
// must write exactly the tensor's byte size; WriteTo fails otherwise.
func (w *Writer) AddTensorFunc(name string, t Type, dims []uint64, fill func(io.Writer) error) error {
	ti, err := w.addTensor(name, t, dims)
	if err != nil {
		return err
	}
	if fill == nil {
		return fmt.Errorf("gguf: writer: tensor %q: nil fill function", name)
	}
	w.tensorIndex[name] = true
	w.tensors = append(w.tensors, writerTensor{info: ti, fill: fill})
	return nil
}

// Tensors returns the tensor infos with the offsets WriteTo will use.
func (w *Writer) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(w.tensors))
	var off uint64
	for i, t := range w.tensors {
		out[i] = t.info
		out[i].Dims = append([]uint64(nil), t.info.Dims...)
		out[i].Offset = off
		off = alignUp(off+t.info.Size, uint64(w.alignment))
	}
	return out
}

// WriteTo writes the file to out and returns the number of bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	infos := w.Tensors()
	e := &encoder{w: bufio.NewWriterSize(out, 1<<20)}
	e.raw([]byte(magic))
	e.u32(w.version)
	e.u64(uint64(len(infos)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.typ))
		e.value(kv.Value)
	}
	for _, ti := range infos {
		e.str(ti.Name)
		e.u32(uint32(len(ti.Dims)))
		for _, d := range ti.Dims {
			e.u64(d)
		}
		e.u32(uint32(ti.Type))
		e.u64(ti.Offset)
	}
	align := uint64(w.alignment)
	e.pad(alignUp(e.n, align))
	dataStart := e.n
	for i, t := range w.tensors {
		ti := &infos[i]
		e.pad(dataStart + ti.Offset)
		if t.fill != nil {
			e.fill(ti, t.fill)
		} else {
			e.raw(t.data)
		}
		e.pad(alignUp(e.n, align))
	}
	if e.err == nil {
		if err := e.w.Flush(); err != nil {
			e.err = fmt.Errorf("gguf: writer: %w", err)
		}
	}
	return int64(e.n), e.err
}

// WriteFile writes the file to path+".tmp-XXXX" in the same folder and
// renames it to path once complete, so that no half-written file is left
// behind on error.
func (w *Writer) WriteFile(path string) (err error) {
	if w.err != nil {
		return w.err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("gguf: writer: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = w.WriteTo(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: writer: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("gguf: writer: %w", err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("gguf: writer: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: writer: %w", err)
	}
	return nil
}

// encoder writes little-endian GGUF primitives, counting bytes and keeping
// the first error (already prefixed with "gguf: writer:").
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	b   [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err != nil {
		return
	}
	m, err := e.w.Write(p)
	e.n += uint64(m)
	if err != nil {
		e.err = fmt.Errorf("gguf: writer: %w", err)
	}
}

func (e *encoder) u8(x uint8) { e.raw([]byte{x}) }

func (e *encoder) u16(x uint16) {
	binary.LittleEndian.PutUint16(e.b[:], x)
	e.raw(e.b[:2])
}

func (e *encoder) u32(x uint32) {
	binary.LittleEndian.PutUint32(e.b[:], x)
	e.raw(e.b[:4])
}

func (e *encoder) u64(x uint64) {
	binary.LittleEndian.PutUint64(e.b[:], x)
	e.raw(e.b[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		m, err := e.w.WriteString(s)
		e.n += uint64(m)
		if err != nil {
			e.err = fmt.Errorf("gguf: writer: %w", err)
		}
	}
}

// pad writes zeros up to absolute position to.
func (e *encoder) pad(to uint64) {
	var zeros [64]byte
	for e.err == nil && e.n < to {
		e.raw(zeros[:min(to-e.n, uint64(len(zeros)))])
	}
}

func (e *encoder) value(v Value) {
	switch x := v.v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default: // an array (checked by Set)
		rv := reflect.ValueOf(x)
		e.u32(uint32(v.elem))
		e.u64(uint64(rv.Len()))
		for i := 0; i < rv.Len() && e.err == nil; i++ {
			e.value(Value{typ: v.elem, v: rv.Index(i).Interface()})
		}
	}
}

// fill streams a tensor's data through fill, which must write exactly
// ti.Size bytes.
func (e *encoder) fill(ti *TensorInfo, fill func(io.Writer) error) {
	if e.err != nil {
		return
	}
	fw := &fillWriter{e: e, left: ti.Size}
	err := fill(fw)
	switch {
	case fw.over:
		e.err = fmt.Errorf("gguf: writer: tensor %q: fill wrote more than its %d bytes", ti.Name, ti.Size)
	case err != nil:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: writer: tensor %q: fill: %w", ti.Name, err)
		}
	case e.err == nil && fw.left != 0:
		e.err = fmt.Errorf("gguf: writer: tensor %q: fill wrote %d of %d bytes", ti.Name, ti.Size-fw.left, ti.Size)
	}
}

// fillWriter passes a fill function's bytes to the encoder, refusing any
// beyond the tensor's size.
type fillWriter struct {
	e    *encoder
	left uint64
	over bool
}

func (fw *fillWriter) Write(p []byte) (int, error) {
	if fw.e.err != nil {
		return 0, fw.e.err
	}
	if uint64(len(p)) > fw.left {
		fw.over = true
		return 0, errors.New("gguf: writer: tensor data exceeds its size")
	}
	before := fw.e.n
	fw.e.raw(p)
	written := fw.e.n - before
	fw.left -= written
	return int(written), fw.e.err
}
