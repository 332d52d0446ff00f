package gguf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

const (
	magic            = "GGUF"
	defaultAlignment = 32
	alignmentKey     = "general.alignment"
	maxNameLen       = 63 // ggml's GGML_MAX_NAME (64) includes the NUL
	maxDims          = 4
	minTensorInfo    = 8 + 4 + 8 + 4 + 8 // name length, n_dims, one dim, type, offset
	minKV            = 8 + 4 + 1         // key length, value type, one byte of value
)

// KV is one metadata key/value pair, in file order.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // ne0 (innermost, contiguous) first, exactly as stored (trailing 1s kept)
	Type   Type
	Offset uint64 // relative to the start of the data section
	Size   uint64 // bytes
}

// Ne returns dimension i, or 1 for i beyond the stored dimensions (ggml's
// convention).
func (ti *TensorInfo) Ne(i int) uint64 {
	if i < 0 || i >= len(ti.Dims) {
		return 1
	}
	return ti.Dims[i]
}

// Elements returns the number of elements (the product of the dims).
func (ti *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range ti.Dims {
		n *= d
	}
	return n
}

// ShapeString formats the dims as ggml prints them, e.g. "{256, 1024}".
func (ti *TensorInfo) ShapeString() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, d := range ti.Dims {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.FormatUint(d, 10))
	}
	sb.WriteByte('}')
	return sb.String()
}

// File is a parsed GGUF file. Its metadata and tensor table are in memory;
// tensor data stays in the file (memory-mapped by Open). A File is safe for
// concurrent use by multiple goroutines once parsed.
type File struct {
	Path       string // name given to Open or Parse, used in errors
	Version    uint32 // 2 or 3
	Alignment  uint64 // data alignment (general.alignment or 32)
	DataOffset uint64 // absolute offset of the tensor data section
	Size       int64  // file size in bytes

	KVs     []KV         // metadata in file order
	Tensors []TensorInfo // tensor infos in file order

	kvIndex     map[string]int
	tensorIndex map[string]int
	data        []byte      // the whole file when memory-mapped
	r           io.ReaderAt // otherwise
	closer      func() error
}

// Parse parses a GGUF file of the given size from r. name is used in error
// messages. Only the header is read; tensor data is read on demand through r,
// which must stay usable until the File is no longer used. Close does not
// close r.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	return parse(r, nil, size, name)
}

// Open memory-maps the file at path (on platforms without mmap, or when the
// mapping fails, it reads through the file instead) and parses it. The file's
// contents are never copied to the heap as a whole. Call Close when done;
// slices returned by TensorData are invalid afterwards. The file must not be
// truncated while it is open (a mapped page past the new end would fault).
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("gguf: %w", err)
	}
	size := st.Size()
	data, unmap, err := mmapFile(fh, size)
	if err != nil || data == nil {
		f, err := parse(fh, nil, size, path)
		if err != nil {
			fh.Close()
			return nil, err
		}
		f.closer = fh.Close
		return f, nil
	}
	fh.Close() // the mapping outlives the descriptor
	f, err := parse(nil, data, size, path)
	if err != nil {
		unmap()
		return nil, err
	}
	f.closer = unmap
	return f, nil
}

// Evict tells the operating system that the tensor bytes in data (a slice
// of this file's mapping, from TensorData) will not be needed soon, so that
// the memory they occupy is released; reading them again maps them back in
// from the file. A loader that has copied a tensor elsewhere (the GPU) uses
// it to keep its resident memory bounded. Slices outside the mapping (the
// file is read without mmap) are left alone.
func (f *File) Evict(data []byte) {
	if len(f.data) == 0 || len(data) == 0 {
		return
	}
	base := uintptr(unsafe.Pointer(&f.data[0]))
	p := uintptr(unsafe.Pointer(&data[0]))
	if p < base || p+uintptr(len(data)) > base+uintptr(len(f.data)) {
		return
	}
	evict(data)
}

// Close releases the mapping or the file opened by Open. It is a no-op for a
// File made by Parse. Calling it twice is harmless.
func (f *File) Close() error {
	c := f.closer
	f.closer, f.data, f.r = nil, nil, nil
	if c == nil {
		return nil
	}
	return c()
}

func parse(r io.ReaderAt, data []byte, size int64, name string) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("gguf: %s: negative size %d", name, size)
	}
	if r == nil && data == nil {
		return nil, fmt.Errorf("gguf: %s: nil reader", name)
	}
	d := &decoder{name: name, data: data, r: r, size: size}
	f := &File{Path: name, Size: size, data: data, r: r, Alignment: defaultAlignment}
	if err := f.parseHeader(d); err != nil {
		return nil, err
	}
	nTensors, nKV, err := f.parseCounts(d)
	if err != nil {
		return nil, err
	}
	kvOffsets, err := f.parseKVs(d, nKV)
	if err != nil {
		return nil, err
	}
	if err := f.parseAlignment(d, kvOffsets); err != nil {
		return nil, err
	}
	offsetAt, err := f.parseTensorInfos(d, nTensors)
	if err != nil {
		return nil, err
	}
	f.DataOffset = alignUp(uint64(d.off), f.Alignment)
	if err := f.checkTensorData(d, offsetAt); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) parseHeader(d *decoder) error {
	d.field = "header magic"
	b, err := d.read(4)
	if err != nil {
		return err
	}
	if string(b) != magic {
		return d.errorf(0, "bad magic %q (% x), expected \"GGUF\" (47 47 55 46)", b, b)
	}
	d.field = "header version"
	v, err := d.u32()
	if err != nil {
		return err
	}
	switch {
	case v == 0:
		return d.errorf(4, "version 0 is not valid, expected 2 or 3")
	case v&0xffff == 0:
		return d.errorf(4, "version 0x%08x has its low 16 bits zero: a big-endian (byte-swapped) file, only little-endian files are supported", v)
	case v == 1:
		return d.errorf(4, "version 1 (32-bit counts) is not supported, expected 2 or 3")
	case v > 3:
		return d.errorf(4, "version %d is not supported, expected 2 or 3", v)
	}
	f.Version = v
	return nil
}

func (f *File) parseCounts(d *decoder) (nTensors, nKV int, err error) {
	d.field = "header tensor_count"
	if nTensors, err = d.count("tensor count", minTensorInfo); err != nil {
		return 0, 0, err
	}
	d.field = "header metadata_kv_count"
	if nKV, err = d.count("metadata KV count", minKV); err != nil {
		return 0, 0, err
	}
	return nTensors, nKV, nil
}

// parseKVs reads the metadata and returns the offset of each KV.
func (f *File) parseKVs(d *decoder, n int) ([]int64, error) {
	f.KVs = make([]KV, 0, n)
	f.kvIndex = make(map[string]int, n)
	offsets := make([]int64, 0, n)
	for i := range n {
		d.field = "metadata KV " + strconv.Itoa(i) + " key"
		at := d.off
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, d.errorf(at, "empty key")
		}
		if j, dup := f.kvIndex[key]; dup {
			return nil, d.errorf(at, "duplicate key %q (first at KV %d, offset %d)", key, j, offsets[j])
		}
		d.field = "key " + strconv.Quote(key) + " value type"
		typeAt := d.off
		t, err := d.u32()
		if err != nil {
			return nil, err
		}
		d.field = "key " + strconv.Quote(key) + " value"
		v, err := d.value(ValueType(t), typeAt)
		if err != nil {
			return nil, err
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
		offsets = append(offsets, at)
	}
	return offsets, nil
}

func (f *File) parseAlignment(d *decoder, kvOffsets []int64) error {
	i, ok := f.kvIndex[alignmentKey]
	if !ok {
		return nil
	}
	d.field = "key " + strconv.Quote(alignmentKey)
	v := f.KVs[i].Value
	if v.Type() != TypeUint32 {
		return d.errorf(kvOffsets[i], "has type %s, expected UINT32", v.typeString())
	}
	a := v.v.(uint32)
	if a == 0 || a&(a-1) != 0 {
		return d.errorf(kvOffsets[i], "alignment %d is not a power of two", a)
	}
	f.Alignment = uint64(a)
	return nil
}

// parseTensorInfos reads the tensor table and returns the offset of each
// tensor's offset field (for later error messages).
func (f *File) parseTensorInfos(d *decoder, n int) ([]int64, error) {
	f.Tensors = make([]TensorInfo, 0, n)
	f.tensorIndex = make(map[string]int, n)
	offsetAt := make([]int64, 0, n)
	for i := range n {
		d.field = "tensor " + strconv.Itoa(i) + " name"
		at := d.off
		name, err := d.str()
		if err != nil {
			return nil, err
		}
		switch {
		case name == "":
			return nil, d.errorf(at, "empty tensor name")
		case len(name) > maxNameLen:
			return nil, d.errorf(at, "tensor name %.20q... is %d bytes, at most %d allowed", name, len(name), maxNameLen)
		}
		if j, dup := f.tensorIndex[name]; dup {
			return nil, d.errorf(at, "duplicate tensor name %q (first is tensor %d)", name, j)
		}
		ti := TensorInfo{Name: name}
		q := strconv.Quote(name)

		d.field = "tensor " + q + " n_dims"
		at = d.off
		nd, err := d.u32()
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > maxDims {
			return nil, d.errorf(at, "n_dims %d, expected 1..%d", nd, maxDims)
		}
		d.field = "tensor " + q + " dims"
		dimsAt := d.off
		ti.Dims = make([]uint64, nd)
		for j := range ti.Dims {
			if ti.Dims[j], err = d.u64(); err != nil {
				return nil, err
			}
			if ti.Dims[j] > math.MaxInt64 {
				return nil, d.errorf(dimsAt, "ne%d %d is negative as int64", j, int64(ti.Dims[j]))
			}
		}

		d.field = "tensor " + q + " type"
		at = d.off
		t, err := d.u32()
		if err != nil {
			return nil, err
		}
		ti.Type = Type(t)
		if _, _, ok := ti.Type.knownSize(); !ok {
			e := d.errorf(at, "unknown or retired tensor type id %d: its block size is unknown, so the tensor cannot be sized", t)
			e.Err = ErrUnsupportedType
			return nil, e
		}
		d.field = "tensor " + q + " dims"
		if ti.Size, err = tensorBytes(ti.Dims, ti.Type); err != nil {
			return nil, d.errorf(dimsAt, "%v", err)
		}

		d.field = "tensor " + q + " offset"
		at = d.off
		if ti.Offset, err = d.u64(); err != nil {
			return nil, err
		}
		if ti.Offset%f.Alignment != 0 {
			return nil, d.errorf(at, "offset %d is not a multiple of the alignment %d", ti.Offset, f.Alignment)
		}
		f.tensorIndex[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
		offsetAt = append(offsetAt, at)
	}
	return offsetAt, nil
}

// checkTensorData checks that every tensor's bytes lie inside the file and
// that no two tensors overlap. Offsets need not be dense or in file order.
func (f *File) checkTensorData(d *decoder, offsetAt []int64) error {
	dataSize := uint64(0)
	if uint64(f.Size) > f.DataOffset {
		dataSize = uint64(f.Size) - f.DataOffset
	}
	order := make([]int, 0, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Size == 0 {
			continue
		}
		order = append(order, i)
		if ti.Offset > dataSize || ti.Size > dataSize-ti.Offset {
			d.field = "tensor " + strconv.Quote(ti.Name) + " offset"
			e := d.errorf(offsetAt[i], "data [%d, +%d) runs past the end of the file: the data section starts at %d and holds %d bytes",
				ti.Offset, ti.Size, f.DataOffset, dataSize)
			e.Err = io.ErrUnexpectedEOF
			return e
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		oa, ob := f.Tensors[a].Offset, f.Tensors[b].Offset
		if oa != ob {
			if oa < ob {
				return -1
			}
			return 1
		}
		return a - b
	})
	for k := 1; k < len(order); k++ {
		p, c := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if p.Offset+p.Size > c.Offset {
			d.field = "tensor " + strconv.Quote(c.Name) + " offset"
			return d.errorf(offsetAt[order[k]], "data [%d, %d) overlaps tensor %q at [%d, %d)",
				c.Offset, c.Offset+c.Size, p.Name, p.Offset, p.Offset+p.Size)
		}
	}
	return nil
}

// tensorBytes returns the byte size of a tensor with the given dims and type,
// checking the block size and overflow. It needs only the type's block
// geometry, so it also sizes known but unsupported types.
func tensorBytes(dims []uint64, t Type) (uint64, error) {
	be, bb, ok := t.knownSize()
	if !ok {
		return 0, fmt.Errorf("tensor type %s (id %d) %w", t, uint32(t), ErrUnsupportedType)
	}
	if len(dims) == 0 {
		return 0, errors.New("no dims")
	}
	ne0 := dims[0]
	if ne0%uint64(be) != 0 {
		return 0, fmt.Errorf("ne0 %d is not a multiple of the %s block size %d", ne0, t, be)
	}
	hi, size := bits.Mul64(ne0/uint64(be), uint64(bb))
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("dims %v overflow: the byte size does not fit in int64", dims)
	}
	elems := ne0
	for _, n := range dims[1:] {
		hi, lo := bits.Mul64(elems, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v overflow: the element count does not fit in int64", dims)
		}
		elems = lo
		hi, lo = bits.Mul64(size, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v overflow: the byte size does not fit in int64", dims)
		}
		size = lo
	}
	return size, nil
}

func alignUp(x, a uint64) uint64 {
	return (x + a - 1) / a * a
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// checkTensor validates ti (which may come from another File or have been
// modified) against this file and its type, and returns the absolute offset
// of its data.
func (f *File) checkTensor(ti *TensorInfo) (uint64, error) {
	if !ti.Type.Supported() {
		return 0, fmt.Errorf("gguf: %s: tensor %q has type %s (id %d), %w", f.Path, ti.Name, ti.Type, uint32(ti.Type), ErrUnsupportedType)
	}
	size, err := tensorBytes(ti.Dims, ti.Type)
	if err != nil {
		return 0, fmt.Errorf("gguf: %s: tensor %q: %w", f.Path, ti.Name, err)
	}
	if size != ti.Size {
		return 0, fmt.Errorf("gguf: %s: tensor %q: size %d does not match its dims %v of type %s (%d bytes)", f.Path, ti.Name, ti.Size, ti.Dims, ti.Type, size)
	}
	if f.data == nil && f.r == nil {
		return 0, fmt.Errorf("gguf: %s: file is closed", f.Path)
	}
	if size == 0 {
		return 0, nil // empty tensors may have any offset, as in parsing
	}
	dataSize := uint64(0)
	if uint64(f.Size) > f.DataOffset {
		dataSize = uint64(f.Size) - f.DataOffset
	}
	if ti.Offset > dataSize || ti.Size > dataSize-ti.Offset {
		return 0, fmt.Errorf("gguf: %s: tensor %q: data [%d, +%d) lies outside the %d-byte data section", f.Path, ti.Name, ti.Offset, ti.Size, dataSize)
	}
	return f.DataOffset + ti.Offset, nil
}

// TensorData returns the raw bytes of a tensor: a slice of the mapping (no
// copy) when the file is memory-mapped, otherwise a freshly read buffer. The
// mapping is read-only: writing to the slice crashes the program. It fails
// for types that are not Supported (with ErrUnsupportedType) and for a
// TensorInfo that does not fit this file.
func (f *File) TensorData(ti *TensorInfo) ([]byte, error) {
	start, err := f.checkTensor(ti)
	if err != nil {
		return nil, err
	}
	if ti.Size == 0 {
		return []byte{}, nil
	}
	return f.readRange(ti, start, ti.Size, nil)
}

// readRange returns n bytes at absolute offset start, into dst if non-nil.
func (f *File) readRange(ti *TensorInfo, start, n uint64, dst []byte) ([]byte, error) {
	if f.data != nil {
		src := f.data[start : start+n : start+n]
		if dst == nil {
			return src, nil
		}
		copy(dst, src)
		return dst, nil
	}
	if dst == nil {
		if n > uint64(maxInt) {
			return nil, fmt.Errorf("gguf: %s: tensor %q: %d bytes do not fit in memory on this platform", f.Path, ti.Name, n)
		}
		dst = make([]byte, n)
	}
	if m, err := f.r.ReadAt(dst[:n], int64(start)); uint64(m) != n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("gguf: %s: reading tensor %q: %w", f.Path, ti.Name, err)
	}
	return dst, nil
}

// ReadTensorRows copies n rows of ne0 elements starting at row into dst,
// which must hold at least n × RowBytes(ne0) bytes. Rows count over all
// dimensions after the first (row r is elements [r·ne0, (r+1)·ne0)).
func (f *File) ReadTensorRows(ti *TensorInfo, row, n int, dst []byte) error {
	start, err := f.checkTensor(ti)
	if err != nil {
		return err
	}
	ne0 := ti.Ne(0)
	var rows uint64
	if ne0 != 0 {
		rows = ti.Elements() / ne0
	}
	if row < 0 || n < 0 || uint64(row) > rows || uint64(n) > rows-uint64(row) {
		return fmt.Errorf("gguf: %s: tensor %q: rows [%d, %d) out of range, it has %d rows", f.Path, ti.Name, row, row+n, rows)
	}
	if n == 0 {
		return nil
	}
	rowBytes := ti.Size / rows // rows > 0 here
	need := uint64(n) * rowBytes
	if uint64(len(dst)) < need {
		return fmt.Errorf("gguf: %s: tensor %q: %d rows need %d bytes, dst holds %d", f.Path, ti.Name, n, need, len(dst))
	}
	_, err = f.readRange(ti, start+uint64(row)*rowBytes, need, dst[:need])
	return err
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KVs[i].Value, true
}

// lookup returns the value of key if it has type want (and, for arrays,
// element type elem).
func (f *File) lookup(key string, want, elem ValueType) (Value, error) {
	v, ok := f.Get(key)
	if !ok {
		return Value{}, fmt.Errorf("gguf: %s: key %q %w", f.Path, key, ErrKeyNotFound)
	}
	wantV := Value{typ: want, elem: elem}
	if v.typ != want || (want == TypeArray && v.elem != elem) {
		return Value{}, fmt.Errorf("gguf: %s: key %q has type %s, expected %s", f.Path, key, v.typeString(), wantV.typeString())
	}
	return v, nil
}

func getScalar[T any](f *File, key string, want ValueType) (T, error) {
	v, err := f.lookup(key, want, 0)
	if err != nil {
		var zero T
		return zero, err
	}
	return v.v.(T), nil
}

func getArray[T any](f *File, key string, elem ValueType) ([]T, error) {
	v, err := f.lookup(key, TypeArray, elem)
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.v.([]T)), nil
}

// String returns a STRING value; a missing key or another type is an error.
func (f *File) String(key string) (string, error) { return getScalar[string](f, key, TypeString) }

// Uint32 returns a UINT32 value (strictly: INT32 or UINT64 is an error).
func (f *File) Uint32(key string) (uint32, error) { return getScalar[uint32](f, key, TypeUint32) }

// Uint64 returns a UINT64 value.
func (f *File) Uint64(key string) (uint64, error) { return getScalar[uint64](f, key, TypeUint64) }

// Int32 returns an INT32 value.
func (f *File) Int32(key string) (int32, error) { return getScalar[int32](f, key, TypeInt32) }

// Float32 returns a FLOAT32 value.
func (f *File) Float32(key string) (float32, error) { return getScalar[float32](f, key, TypeFloat32) }

// Bool returns a BOOL value.
func (f *File) Bool(key string) (bool, error) { return getScalar[bool](f, key, TypeBool) }

// Strings returns a copy of an ARRAY of STRING value.
func (f *File) Strings(key string) ([]string, error) { return getArray[string](f, key, TypeString) }

// Int32s returns a copy of an ARRAY of INT32 value.
func (f *File) Int32s(key string) ([]int32, error) { return getArray[int32](f, key, TypeInt32) }

// Uint32s returns a copy of an ARRAY of UINT32 value.
func (f *File) Uint32s(key string) ([]uint32, error) { return getArray[uint32](f, key, TypeUint32) }
