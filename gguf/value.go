package gguf

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ValueType is the type id of a GGUF metadata value.
type ValueType uint32

// The 13 metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// valueTraits describes one value type: its name, the encoded size of a
// scalar (0 for strings and arrays, whose size varies) and the Go type of a
// scalar, used to check ArrayValue's argument.
var valueTraits = [...]struct {
	name   string
	size   int
	goType reflect.Type
}{
	TypeUint8:   {"UINT8", 1, reflect.TypeFor[uint8]()},
	TypeInt8:    {"INT8", 1, reflect.TypeFor[int8]()},
	TypeUint16:  {"UINT16", 2, reflect.TypeFor[uint16]()},
	TypeInt16:   {"INT16", 2, reflect.TypeFor[int16]()},
	TypeUint32:  {"UINT32", 4, reflect.TypeFor[uint32]()},
	TypeInt32:   {"INT32", 4, reflect.TypeFor[int32]()},
	TypeFloat32: {"FLOAT32", 4, reflect.TypeFor[float32]()},
	TypeBool:    {"BOOL", 1, reflect.TypeFor[bool]()},
	TypeString:  {"STRING", 0, reflect.TypeFor[string]()},
	TypeArray:   {"ARRAY", 0, nil},
	TypeUint64:  {"UINT64", 8, reflect.TypeFor[uint64]()},
	TypeInt64:   {"INT64", 8, reflect.TypeFor[int64]()},
	TypeFloat64: {"FLOAT64", 8, reflect.TypeFor[float64]()},
}

func (t ValueType) valid() bool { return uint64(t) < uint64(len(valueTraits)) }

// minSize is the smallest encoded size of one value of type t (a string
// needs at least its 8-byte length, an array its 12-byte header).
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return valueTraits[t].size
}

// String returns the type name ("UINT32", "ARRAY", ...) or "valuetype(N)".
func (t ValueType) String() string {
	if t.valid() {
		return valueTraits[t].name
	}
	return "valuetype(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Value is a decoded metadata value: a scalar, a string, or an array of
// scalars or strings (nested arrays are not supported). The zero Value is
// invalid (Any returns nil).
type Value struct {
	typ  ValueType
	elem ValueType // element type of an array
	v    any       // uint8 ... float64, bool, string, or a slice of those
}

// Type returns the value's type.
func (v Value) Type() ValueType { return v.typ }

// ElemType returns the element type of an array (and the value's own type
// for a scalar).
func (v Value) ElemType() ValueType {
	if v.typ == TypeArray {
		return v.elem
	}
	return v.typ
}

// Len returns the number of elements of an array, 1 for a scalar and 0 for
// the zero Value.
func (v Value) Len() int {
	if v.v == nil {
		return 0
	}
	if v.typ == TypeArray {
		return reflect.ValueOf(v.v).Len()
	}
	return 1
}

// Any returns the Go value: uint8, int8, uint16, int16, uint32, int32,
// float32, bool, string, uint64, int64, float64, or for an array a slice of
// one of those ([]string, []int32, ...). Slices are shared with the Value
// and must not be modified.
func (v Value) Any() any { return v.v }

// String formats the value for display: numbers as Go prints them, strings
// quoted, arrays as [a, b, ...] with at most 8 elements shown.
func (v Value) String() string {
	if v.v == nil {
		return "<invalid>"
	}
	if v.typ != TypeArray {
		return formatScalar(v.v)
	}
	rv := reflect.ValueOf(v.v)
	const show = 8
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < rv.Len() && i < show; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(formatScalar(rv.Index(i).Interface()))
	}
	if n := rv.Len(); n > show {
		fmt.Fprintf(&sb, ", ... (%d more)", n-show)
	}
	sb.WriteByte(']')
	return sb.String()
}

func formatScalar(x any) string {
	if s, ok := x.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(x)
}

// typeString describes a value's type for error messages: "UINT32",
// "ARRAY of STRING".
func (v Value) typeString() string {
	if v.typ == TypeArray {
		return "ARRAY of " + v.elem.String()
	}
	return v.typ.String()
}

// Uint8Value returns a UINT8 value.
func Uint8Value(x uint8) Value { return Value{typ: TypeUint8, v: x} }

// Int8Value returns an INT8 value.
func Int8Value(x int8) Value { return Value{typ: TypeInt8, v: x} }

// Uint16Value returns a UINT16 value.
func Uint16Value(x uint16) Value { return Value{typ: TypeUint16, v: x} }

// Int16Value returns an INT16 value.
func Int16Value(x int16) Value { return Value{typ: TypeInt16, v: x} }

// Uint32Value returns a UINT32 value.
func Uint32Value(x uint32) Value { return Value{typ: TypeUint32, v: x} }

// Int32Value returns an INT32 value.
func Int32Value(x int32) Value { return Value{typ: TypeInt32, v: x} }

// Float32Value returns a FLOAT32 value.
func Float32Value(x float32) Value { return Value{typ: TypeFloat32, v: x} }

// BoolValue returns a BOOL value.
func BoolValue(x bool) Value { return Value{typ: TypeBool, v: x} }

// StringValue returns a STRING value.
func StringValue(x string) Value { return Value{typ: TypeString, v: x} }

// Uint64Value returns a UINT64 value.
func Uint64Value(x uint64) Value { return Value{typ: TypeUint64, v: x} }

// Int64Value returns an INT64 value.
func Int64Value(x int64) Value { return Value{typ: TypeInt64, v: x} }

// Float64Value returns a FLOAT64 value.
func Float64Value(x float64) Value { return Value{typ: TypeFloat64, v: x} }

// ArrayValue returns an ARRAY value with elements of type elem. elems must
// be the matching Go slice: []uint8 for TypeUint8, []string for TypeString,
// []bool for TypeBool, and so on (nil is an empty array). Nested arrays are
// not supported.
func ArrayValue(elem ValueType, elems any) (Value, error) {
	if !elem.valid() || elem == TypeArray {
		return Value{}, fmt.Errorf("gguf: array element type %s is not supported", elem)
	}
	want := reflect.SliceOf(valueTraits[elem].goType)
	if elems == nil {
		elems = reflect.MakeSlice(want, 0, 0).Interface()
	}
	if got := reflect.TypeOf(elems); got != want {
		return Value{}, fmt.Errorf("gguf: array of %s needs a %s, got %s", elem, want, got)
	}
	return Value{typ: TypeArray, elem: elem, v: elems}, nil
}

// StringsValue returns an ARRAY of STRING value.
func StringsValue(x []string) Value { return arrayOf(TypeString, x) }

// Int32sValue returns an ARRAY of INT32 value.
func Int32sValue(x []int32) Value { return arrayOf(TypeInt32, x) }

// Uint32sValue returns an ARRAY of UINT32 value.
func Uint32sValue(x []uint32) Value { return arrayOf(TypeUint32, x) }

// Float32sValue returns an ARRAY of FLOAT32 value.
func Float32sValue(x []float32) Value { return arrayOf(TypeFloat32, x) }

func arrayOf[T any](elem ValueType, x []T) Value {
	if x == nil {
		x = []T{}
	}
	return Value{typ: TypeArray, elem: elem, v: x}
}
