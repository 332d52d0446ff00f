package gguf

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTypeTraits(t *testing.T) {
	want := map[Type][3]int{ // elems, bytes
		F32: {1, 4}, F16: {1, 2}, BF16: {1, 2}, Q8_0: {32, 34}, Q4_0: {32, 18}, Q4_1: {32, 20},
		Q5_0: {32, 22}, Q5_1: {32, 24}, Q2_K: {256, 84}, Q3_K: {256, 110}, Q4_K: {256, 144},
		Q5_K: {256, 176}, Q6_K: {256, 210},
	}
	require.Len(t, SupportedTypes, 13)
	require.Equal(t, []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K}, SupportedTypes)
	for _, typ := range SupportedTypes {
		require.True(t, typ.Supported(), typ.String())
		require.Equal(t, want[typ][0], typ.BlockElems(), typ.String())
		require.Equal(t, want[typ][1], typ.BlockBytes(), typ.String())
		p, err := ParseType(typ.String())
		require.NoError(t, err)
		require.Equal(t, typ, p)
	}
	supported := 0
	for id := range 64 {
		if Type(id).Supported() {
			supported++
		}
	}
	require.Equal(t, 13, supported)

	require.Equal(t, "Q4_K", Q4_K.String())
	require.Equal(t, "BF16", BF16.String())
	require.Equal(t, "IQ4_XS", Type(23).String())
	require.Equal(t, "Q8_K", Q8_K.String())
	require.Equal(t, "NVFP4", Type(40).String())
	require.Equal(t, "type(99)", Type(99).String())
	require.Equal(t, "type(4)", Type(4).String()) // retired Q4_2
	require.Equal(t, "type(4294967295)", Type(1<<32-1).String())

	for _, typ := range []Type{Q8_1, Q8_K, 23, 28, 4, 99} {
		require.False(t, typ.Supported(), typ.String())
		require.Zero(t, typ.BlockElems())
		require.Zero(t, typ.BlockBytes())
		_, err := typ.RowBytes(256)
		require.ErrorIs(t, err, ErrUnsupportedType)
	}
}

func TestRowBytes(t *testing.T) {
	n, err := Q4_K.RowBytes(1024)
	require.NoError(t, err)
	require.Equal(t, 4*144, n)
	n, err = F16.RowBytes(7)
	require.NoError(t, err)
	require.Equal(t, 14, n)
	n, err = Q8_0.RowBytes(0)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = Q4_K.RowBytes(300)
	require.ErrorContains(t, err, "300 elements is not a multiple of the Q4_K block size 256")
	_, err = Q4_0.RowBytes(-32)
	require.Error(t, err)
	_, err = F32.RowBytes(maxInt - maxInt%4)
	require.ErrorContains(t, err, "overflow")
}

func TestParseType(t *testing.T) {
	for name, want := range map[string]Type{
		"q4_k": Q4_K, "F16": F16, "bf16": BF16, "Q8_0": Q8_0, "q6_K": Q6_K, "iq4_xs": 23, "f32": F32,
	} {
		got, err := ParseType(name)
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}
	for _, bad := range []string{"", "q4", "Q4_K_M", "type(99)", "float32"} {
		_, err := ParseType(bad)
		require.ErrorContains(t, err, "unknown tensor type name", bad)
	}
}
