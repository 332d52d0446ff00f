package gguf

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

// TestEvictKeepsTheData: evicting a mapped tensor's pages changes nothing a
// reader sees (they come back from the file), and on a file read without a
// mapping (Parse over bytes) Evict leaves the heap data alone.
func TestEvictKeepsTheData(t *testing.T) {
	path := fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	parsed, err := Parse(bytes.NewReader(raw), int64(len(raw)), "bytes")
	require.NoError(t, err)
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		require.NoError(t, err)
		want := append([]byte(nil), data...)
		f.Evict(data)
		require.Equal(t, want, data, "%s after Evict", ti.Name)
		require.Equal(t, raw[int64(f.DataOffset)+int64(ti.Offset):][:len(want)], want, "%s: the file's bytes", ti.Name)

		heap, err := parsed.TensorData(&parsed.Tensors[i])
		require.NoError(t, err)
		parsed.Evict(heap)
		require.Equal(t, want, heap, "%s: a file read without mmap is not touched", ti.Name)
	}
}
