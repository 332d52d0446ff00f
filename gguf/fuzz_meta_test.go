package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// metaKeys are the keys FuzzMetadataGetters writes (repeats overwrite).
var metaKeys = []string{"general.architecture", "general.name", "rwkv7.block_count", "rwkv7.attention.layer_norm_epsilon",
	"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "x", "a.b.c.d.e.f", "ключ", "\x00\xff"}

// fuzzBytes hands out the bytes of a fuzz input, zeros once it runs dry.
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) next(n int) []byte {
	out := make([]byte, n)
	m := copy(out, r.b)
	r.b = r.b[m:]
	return out
}

func (r *fuzzBytes) u8() uint8   { return r.next(1)[0] }
func (r *fuzzBytes) u64() uint64 { return binary.LittleEndian.Uint64(r.next(8)) }

// scalarFrom draws a Go value of scalar type t.
func scalarFrom(r *fuzzBytes, t ValueType) any {
	x := r.u64()
	switch t {
	case TypeUint8:
		return uint8(x)
	case TypeInt8:
		return int8(x)
	case TypeUint16:
		return uint16(x)
	case TypeInt16:
		return int16(x)
	case TypeUint32:
		return uint32(x)
	case TypeInt32:
		return int32(x)
	case TypeFloat32:
		return math.Float32frombits(uint32(x))
	case TypeBool:
		return x&1 == 1
	case TypeString:
		return string(r.next(int(x % 24))) // any bytes, valid UTF-8 or not
	case TypeUint64:
		return x
	case TypeInt64:
		return int64(x)
	case TypeFloat64:
		return math.Float64frombits(x)
	}
	panic("unreachable")
}

var scalarTypes = []ValueType{TypeUint8, TypeInt8, TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeFloat32, TypeBool,
	TypeString, TypeUint64, TypeInt64, TypeFloat64}

// valueFrom draws a scalar or an array value.
func valueFrom(t *testing.T, r *fuzzBytes) Value {
	sel := int(r.u8()) % (len(scalarTypes) + 3)
	if sel < len(scalarTypes) {
		typ := scalarTypes[sel]
		v := Value{typ: typ, v: scalarFrom(r, typ)}
		return v
	}
	elem := scalarTypes[int(r.u8())%len(scalarTypes)]
	n := int(r.u8()) % 6
	s := reflect.MakeSlice(reflect.SliceOf(valueTraits[elem].goType), n, n)
	for i := 0; i < n; i++ {
		s.Index(i).Set(reflect.ValueOf(scalarFrom(r, elem)))
	}
	v, err := ArrayValue(elem, s.Interface())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameBits compares Go values, floats by their bits (NaN payloads kept).
func sameBits(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
	if ra.Kind() == reflect.Slice {
		if rb.Kind() != reflect.Slice || ra.Type() != rb.Type() || ra.Len() != rb.Len() {
			return false
		}
		for i := 0; i < ra.Len(); i++ {
			if !sameBits(ra.Index(i).Interface(), rb.Index(i).Interface()) {
				return false
			}
		}
		return true
	}
	return a == b
}

// getter calls one typed getter and reports the value, the error and the
// type it reads.
type getter struct {
	typ, elem ValueType
	get       func(f *File, key string) (any, error)
}

var getters = []getter{
	{TypeString, 0, func(f *File, k string) (any, error) { return f.String(k) }},
	{TypeUint32, 0, func(f *File, k string) (any, error) { return f.Uint32(k) }},
	{TypeUint64, 0, func(f *File, k string) (any, error) { return f.Uint64(k) }},
	{TypeInt32, 0, func(f *File, k string) (any, error) { return f.Int32(k) }},
	{TypeFloat32, 0, func(f *File, k string) (any, error) { return f.Float32(k) }},
	{TypeBool, 0, func(f *File, k string) (any, error) { return f.Bool(k) }},
	{TypeArray, TypeString, func(f *File, k string) (any, error) { return f.Strings(k) }},
	{TypeArray, TypeInt32, func(f *File, k string) (any, error) { return f.Int32s(k) }},
	{TypeArray, TypeUint32, func(f *File, k string) (any, error) { return f.Uint32s(k) }},
}

// FuzzMetadataGetters writes metadata drawn from the input (every value
// type, arrays of each, odd keys, repeated keys), reads the file back and
// calls every typed getter on every key: none may panic, the getter of the
// value's own type returns exactly the value written (floats bit for bit),
// every other getter fails naming the key (quoted) and both types, and a missing key
// is ErrKeyNotFound.
func FuzzMetadataGetters(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 8, 5, 'r', 'w', 'k', 'v', '7'})
	f.Add([]byte{4, 12, 8, 3, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(bytes.Repeat([]byte{1, 6, 0xff, 0xff, 0xc0, 0x7f}, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzBytes{b: data}
		w := NewWriter()
		want := map[string]Value{}
		for ops := 0; len(r.b) > 0 && ops < 16; ops++ {
			key := metaKeys[int(r.u8())%len(metaKeys)]
			v := valueFrom(t, r)
			w.Set(key, v)
			want[key] = v
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatalf("writing %d keys: %v", len(want), err)
		}
		gf, err := Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "meta.gguf")
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		if len(gf.KVs) != len(want) {
			t.Fatalf("%d keys read back, %d written", len(gf.KVs), len(want))
		}
		for key, wv := range want {
			gv, ok := gf.Get(key)
			if !ok || gv.Type() != wv.Type() || gv.ElemType() != wv.ElemType() || !sameBits(gv.Any(), wv.Any()) {
				t.Fatalf("key %q: read %s %v, wrote %s %v", key, gv.typeString(), gv, wv.typeString(), wv)
			}
			_ = gv.String()
			for _, g := range getters {
				got, err := g.get(gf, key)
				match := g.typ == wv.Type() && (g.typ != TypeArray || g.elem == wv.ElemType())
				if match {
					if err != nil || !sameBits(got, wv.Any()) {
						t.Fatalf("key %q (%s): getter gave %v, %v", key, wv.typeString(), got, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), "has type "+wv.typeString()) || !strings.Contains(err.Error(), strconv.Quote(key)) {
					t.Fatalf("key %q (%s) read as %s: got %v, %v; want an error naming the key and both types", key, wv.typeString(), g.typ, got, err)
				}
			}
		}
		for _, g := range getters {
			if _, err := g.get(gf, "no.such.key"); !errors.Is(err, ErrKeyNotFound) {
				t.Fatalf("missing key: got %v, want ErrKeyNotFound", err)
			}
		}
	})
}
