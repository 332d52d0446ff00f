package generate

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// ModelID identifies the model a recurrent state belongs to.
type ModelID struct {
	// Name is the model's general.name ("" when the file has none).
	Name string
	// Hash is the SHA-256 of the model's metadata and tensor table (names,
	// types, shapes), not of the tensor data, so it is fast to compute; see
	// IdentifyModel.
	Hash [32]byte
	// The shape of the model's state and its vocabulary size.
	Layers, Dim, HeadSize, Vocab int
}

// ShortHash is the first 12 hex digits of the hash, for messages.
func (id ModelID) ShortHash() string { return hex.EncodeToString(id.Hash[:6]) }

// String names the model for messages: "name" (sha256 0123456789ab).
func (id ModelID) String() string {
	name := fmt.Sprintf("%q", id.Name)
	if id.Name == "" {
		name = "(unnamed)"
	}
	return name + " (sha256 " + id.ShortHash() + ")"
}

// identityDomain starts the hashed bytes; it changes if the encoding below does.
const identityDomain = "rwkv-gpu model identity 1\n"

// IdentifyModel computes the identity of a loaded model from its GGUF
// metadata and tensor table. The hashed bytes are, all integers
// little-endian and each string as a u64 byte count and its bytes:
//
//	"rwkv-gpu model identity 1\n"
//	u64 number of metadata keys, then per key in byte order of the keys:
//	    key, u32 value type, u32 element type (the value type for scalars),
//	    the value: a scalar in its GGUF encoding (bool one byte), a string,
//	    or an array as a u64 element count and its elements
//	u64 number of tensors, then per tensor in byte order of the names:
//	    name, u32 ggml type, u32 number of dims, u64 dims (ne0 first)
//
// The order of keys and tensors in the file does not matter; a different
// quantization, shape or metadata value gives a different identity.
func IdentifyModel(w *model.Weights) (ModelID, error) {
	if w == nil || w.File == nil {
		return ModelID{}, errors.New("generate: identify model: no model file")
	}
	f := w.File
	h := sha256.New()
	e := hashEncoder{h: bufio.NewWriterSize(h, 1<<16)}
	e.raw([]byte(identityDomain))

	kvs := make([]int, len(f.KVs))
	for i := range kvs {
		kvs[i] = i
	}
	sort.SliceStable(kvs, func(a, b int) bool { return f.KVs[kvs[a]].Key < f.KVs[kvs[b]].Key })
	e.u64(uint64(len(kvs)))
	for _, i := range kvs {
		kv := &f.KVs[i]
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type()))
		e.u32(uint32(kv.Value.ElemType()))
		if err := e.value(kv.Value.Any()); err != nil {
			return ModelID{}, fmt.Errorf("generate: identify model %s: metadata key %s: %w", f.Path, kv.Key, err)
		}
	}

	ts := make([]int, len(f.Tensors))
	for i := range ts {
		ts[i] = i
	}
	sort.SliceStable(ts, func(a, b int) bool { return f.Tensors[ts[a]].Name < f.Tensors[ts[b]].Name })
	e.u64(uint64(len(ts)))
	for _, i := range ts {
		ti := &f.Tensors[i]
		e.str(ti.Name)
		e.u32(uint32(ti.Type))
		e.u32(uint32(len(ti.Dims)))
		for _, d := range ti.Dims {
			e.u64(d)
		}
	}

	c := w.Config
	id := ModelID{Name: c.Name, Layers: c.Layers, Dim: c.Dim, HeadSize: c.HeadSize, Vocab: c.Vocab}
	e.h.Flush() // a hash never fails to write
	h.Sum(id.Hash[:0])
	return id, nil
}

// hashEncoder writes the identity encoding into a hash.
type hashEncoder struct {
	h   *bufio.Writer // in front of the hash: most writes are a few bytes
	buf [8]byte
}

func (e *hashEncoder) raw(p []byte) { e.h.Write(p) }

func (e *hashEncoder) u8(x uint8) { e.raw([]byte{x}) }

func (e *hashEncoder) u16(x uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], x)
	e.raw(e.buf[:2])
}

func (e *hashEncoder) u32(x uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], x)
	e.raw(e.buf[:4])
}

func (e *hashEncoder) u64(x uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], x)
	e.raw(e.buf[:8])
}

func (e *hashEncoder) str(s string) {
	e.u64(uint64(len(s)))
	io.WriteString(e.h, s)
}

// value encodes a metadata value as gguf.Value.Any returns it.
func (e *hashEncoder) value(v any) error {
	switch x := v.(type) {
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
		b := uint8(0)
		if x {
			b = 1
		}
		e.u8(b)
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []uint8:
		return arrayOf(e, x)
	case []int8:
		return arrayOf(e, x)
	case []uint16:
		return arrayOf(e, x)
	case []int16:
		return arrayOf(e, x)
	case []uint32:
		return arrayOf(e, x)
	case []int32:
		return arrayOf(e, x)
	case []float32:
		return arrayOf(e, x)
	case []bool:
		return arrayOf(e, x)
	case []string: // the vocabulary: the bulk of the metadata
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []uint64:
		return arrayOf(e, x)
	case []int64:
		return arrayOf(e, x)
	case []float64:
		return arrayOf(e, x)
	default:
		return fmt.Errorf("unsupported value of Go type %T", v)
	}
	return nil
}

func arrayOf[T any](e *hashEncoder, xs []T) error {
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		if err := e.value(x); err != nil {
			return err
		}
	}
	return nil
}
