package gguf

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriterStreaming(t *testing.T) {
	w := NewWriter()
	w.SetUint32("n", 1)
	const rows = 3000
	rowBytes := must(Q4_K.RowBytes(512))
	x := make([]float32, 512)
	row := make([]byte, rowBytes)
	fill := func(out io.Writer) error {
		for r := range rows {
			for i := range x {
				x[i] = float32(r%7) - float32(i%5)
			}
			if err := QuantizeRow(Q4_K, x, row); err != nil {
				return err
			}
			if _, err := out.Write(row); err != nil {
				return err
			}
		}
		return nil
	}
	require.NoError(t, w.AddTensorFunc("big", Q4_K, []uint64{512, rows}, fill))
	require.NoError(t, w.AddTensor("small", F32, []uint64{1}, make([]byte, 4)))
	infos := w.Tensors()
	require.Equal(t, uint64(0), infos[0].Offset)
	require.Equal(t, uint64(rows*rowBytes), infos[0].Size)
	require.Equal(t, alignUp(uint64(rows*rowBytes), 32), infos[1].Offset)

	path := filepath.Join(t.TempDir(), "big.gguf")
	require.NoError(t, w.WriteFile(path))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	ti, _ := f.Tensor("big")
	require.Equal(t, "{512, 3000}", ti.ShapeString())
	got := make([]byte, rowBytes)
	require.NoError(t, f.ReadTensorRows(ti, 1234, 1, got))
	for i := range x {
		x[i] = float32(1234%7) - float32(i%5)
	}
	require.NoError(t, QuantizeRow(Q4_K, x, row))
	require.Equal(t, row, got)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")
}

func TestWriterFillErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		fill func(io.Writer) error
		want string
	}{
		{"short", func(w io.Writer) error { _, err := w.Write(make([]byte, 10)); return err }, `tensor "t": fill wrote 10 of 16 bytes`},
		{"long", func(w io.Writer) error { _, err := w.Write(make([]byte, 17)); return err }, `tensor "t": fill wrote more than its 16 bytes`},
		{"long ignored", func(w io.Writer) error { w.Write(make([]byte, 12)); w.Write(make([]byte, 12)); return nil }, "fill wrote more than its 16 bytes"},
		{"error", func(io.Writer) error { return errors.New("boom") }, `tensor "t": fill: boom`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter()
			require.NoError(t, w.AddTensorFunc("t", F32, []uint64{4}, c.fill))
			_, err := w.WriteTo(io.Discard)
			require.ErrorContains(t, err, "gguf: writer: "+c.want[:0])
			require.ErrorContains(t, err, c.want)
			path := filepath.Join(dir, c.name+".gguf")
			require.ErrorContains(t, w.WriteFile(path), c.want)
			_, err = os.Stat(path)
			require.ErrorIs(t, err, os.ErrNotExist)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "temporary files removed on error")
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		n := f.after
		f.after = 0
		return n, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	require.ErrorContains(t, w.AddTensor("", F32, []uint64{1}, make([]byte, 4)), "empty tensor name")
	require.ErrorContains(t, w.AddTensor(string(make([]byte, 64)), F32, []uint64{1}, make([]byte, 4)), "at most 63")
	require.ErrorContains(t, w.AddTensor("x", F32, nil, nil), "has 0 dims")
	require.ErrorContains(t, w.AddTensor("x", F32, []uint64{1, 1, 1, 1, 1}, make([]byte, 4)), "has 5 dims")
	require.ErrorContains(t, w.AddTensor("x", Q4_K, []uint64{300}, nil), "ne0 300 is not a multiple of the Q4_K block size 256")
	require.ErrorContains(t, w.AddTensor("x", Type(99), []uint64{1}, nil), "type(99) (id 99) not supported")
	require.ErrorContains(t, w.AddTensor("x", F32, []uint64{1 << 63}, nil), "too large")
	require.ErrorContains(t, w.AddTensor("x", F32, []uint64{1 << 40, 1 << 30}, nil), "overflow")
	require.ErrorContains(t, w.AddTensor("x", F32, []uint64{4, 2}, make([]byte, 31)), `tensor "x" F32 {4, 2} needs 32 bytes, got 31`)
	require.ErrorContains(t, w.AddTensorFunc("x", F32, []uint64{4}, nil), "nil fill")
	require.NoError(t, w.AddTensor("x", F32, []uint64{4, 2}, make([]byte, 32)))
	require.ErrorContains(t, w.AddTensor("x", F32, []uint64{1}, make([]byte, 4)), `duplicate tensor "x"`)

	// Write errors propagate with the byte count so far.
	var ok bytes.Buffer
	n, err := w.WriteTo(&ok)
	require.NoError(t, err)
	_, err = w.WriteTo(&failWriter{after: 10})
	require.ErrorContains(t, err, "gguf: writer: disk full")
	require.Equal(t, int64(ok.Len()), n)

	for _, c := range []struct {
		set  func(w *Writer)
		want string
	}{
		{func(w *Writer) { w.SetString("", "x") }, "empty key"},
		{func(w *Writer) { w.Set("k", Value{}) }, `key "k": invalid (zero) value`},
		{func(w *Writer) { w.Set("k", Value{typ: TypeUint32, v: int32(1)}) }, "UINT32 value holds a int32"},
		{func(w *Writer) { w.Set("k", Value{typ: TypeArray, elem: TypeArray, v: []int32{}}) }, "array element type ARRAY is not supported"},
		{func(w *Writer) { w.SetAlignment(48) }, "general.alignment must be a UINT32 power of two, got UINT32 48"},
		{func(w *Writer) { w.SetAlignment(0) }, "power of two"},
		{func(w *Writer) { w.SetInt32("general.alignment", 32) }, "got INT32 32"},
		{func(w *Writer) { w.SetVersion(1) }, "version 1 is not supported"},
	} {
		w := NewWriter()
		c.set(w)
		_, err := w.WriteTo(io.Discard)
		require.ErrorContains(t, err, c.want)
		require.ErrorContains(t, w.WriteFile(filepath.Join(t.TempDir(), "x.gguf")), c.want)
	}
}

func TestWriterSetReplaces(t *testing.T) {
	w := NewWriter()
	w.SetUint32("a", 1)
	w.SetString("b", "x")
	w.SetAlignment(64)
	w.SetUint32("a", 2) // replaced in place
	w.SetAlignment(16)
	w.SetFloat32s("c", []float32{1, 2})
	w.SetUint32s("d", nil)
	w.SetInt32("e", -1)
	w.SetUint64("f", 5)
	w.SetBool("g", false)
	require.NoError(t, w.AddTensor("t", F16, []uint64{3}, make([]byte, 6)))
	require.NoError(t, w.AddTensor("u", F16, []uint64{3}, make([]byte, 6)))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := parseBytes(buf.Bytes())
	require.NoError(t, err)
	var keys []string
	for _, kv := range f.KVs {
		keys = append(keys, kv.Key)
	}
	require.Equal(t, []string{"a", "b", "general.alignment", "c", "d", "e", "f", "g"}, keys)
	a, _ := f.Uint32("a")
	require.Equal(t, uint32(2), a)
	require.Equal(t, uint64(16), f.Alignment)
	require.Equal(t, uint64(16), f.Tensors[1].Offset)
	require.Zero(t, buf.Len()%16)
}
