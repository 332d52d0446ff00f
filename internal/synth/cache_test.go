package synth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

func TestCachedPath(t *testing.T) {
	p, err := PresetByName("0.1b")
	require.NoError(t, err)
	require.Equal(t, filepath.Join("cache", "rwkv7-synth-0.1b-Q8_0-seed1.gguf"),
		CachedPath("cache", Options{Preset: p, Type: gguf.Q8_0, Seed: 1}))
	odd := Preset{Name: "my/model x"}
	require.Equal(t, "rwkv7-synth-my_model_x-Q4_K-seed0.gguf", filepath.Base(CachedPath("", Options{Preset: odd, Type: gguf.Q4_K})))
}

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	opt := Options{Preset: tinyPreset(t), Type: gguf.Q5_K, Seed: 3}
	path, err := Ensure(dir, opt)
	require.NoError(t, err)
	require.Equal(t, CachedPath(dir, opt), path)
	want, err := os.ReadFile(path)
	require.NoError(t, err)

	// A second call keeps the file.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, old, old))
	path2, err := Ensure(dir, opt)
	require.NoError(t, err)
	require.Equal(t, path, path2)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, st.ModTime().Equal(old), "file was rewritten")

	// A damaged file, or one made from other options, is replaced.
	require.NoError(t, os.WriteFile(path, []byte("GGUF garbage"), 0o644))
	_, err = Ensure(dir, opt)
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, got)

	other := opt
	other.Seed = 4
	require.NoError(t, Write(path, other))
	_, err = Ensure(dir, opt)
	require.NoError(t, err)
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, got)

	// Errors are reported.
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	_, err = Ensure(filepath.Join(blocker, "sub"), opt)
	require.Error(t, err)
}
