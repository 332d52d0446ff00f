package synth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// CachedPath returns the path Ensure uses for opt in dir, e.g.
// dir/rwkv7-synth-0.1b-Q8_0-seed1.gguf.
func CachedPath(dir string, opt Options) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, opt.Preset.Name)
	return filepath.Join(dir, fmt.Sprintf("rwkv7-synth-%s-%s-seed%d.gguf", name, opt.Type, opt.Seed))
}

// Ensure returns CachedPath(dir, opt), writing the file first (atomically,
// creating dir if needed) unless a file written by this version of the
// package for the same shape, type and seed is already there.
func Ensure(dir string, opt Options) (string, error) {
	path := CachedPath(dir, opt)
	ok, err := cached(path, opt)
	if err != nil {
		return "", err
	}
	if ok {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("synth: %w", err)
	}
	if err := Write(path, opt); err != nil {
		return "", err
	}
	return path, nil
}

// cached reports whether path holds a usable file for opt. A missing file
// is not an error; an unreadable or different one is replaced.
func cached(path string, opt Options) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("synth: %w", err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	version, verr := f.Uint32(KeyVersion)
	seed, serr := f.Uint64(KeySeed)
	c, cerr := model.ConfigFromGGUF(f)
	if verr != nil || serr != nil || cerr != nil || version != Version || seed != opt.Seed {
		return false, nil
	}
	want := opt.Preset.Config
	c.Name, want.Name = "", ""
	if c != want {
		return false, nil
	}
	head, ok := f.Tensor(model.TensorEmbed)
	return ok && head.Type == opt.Type, nil
}
