package gguf

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixtureFiles returns the paths of the tiny fixture models, or nil when the
// shared fixtures are absent (seeding is then skipped, not the target).
func fixtureFiles() []string {
	dir := os.Getenv("RWKV_FIXTURES")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil
		}
		for {
			if _, err := os.Stat(filepath.Join(wd, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(wd)
			if parent == wd {
				return nil
			}
			wd = parent
		}
		dir = filepath.Join(wd, "..", "shared", "fixtures")
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "tiny", "rwkv7-tiny-*.gguf"))
	return paths
}

// compactFixture rebuilds a fixture with the same metadata keys and types
// (arrays cut to their first 16 elements) and the same tensor names, types
// and ranks, each tensor cut down to one block of its real data: a realistic
// seed of about 10 KB. Small seeds matter: the fuzzing engine minimizes every
// new interesting input by re-running the target about once per byte, which
// with the full fixtures (or even the 1024-token vocabulary) would take the
// whole fuzzing time.
func compactFixture(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := NewWriter()
	w.SetVersion(f.Version)
	for _, kv := range f.KVs {
		v := kv.Value
		if v.Type() == TypeArray && v.Len() > 16 {
			rv := reflect.ValueOf(v.Any()).Slice(0, 16)
			if v, err = ArrayValue(v.ElemType(), rv.Interface()); err != nil {
				return nil, err
			}
		}
		w.Set(kv.Key, v)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		if err != nil {
			return nil, err
		}
		dims := make([]uint64, len(ti.Dims))
		for j := range dims {
			dims[j] = 1
		}
		dims[0] = uint64(ti.Type.BlockElems())
		if err := w.AddTensor(ti.Name, ti.Type, dims, data[:ti.Type.BlockBytes()]); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	_, err = w.WriteTo(&buf)
	return buf.Bytes(), err
}

// fuzzing reports whether the test binary runs with -test.fuzz (as opposed
// to running the seed corpus as a plain test).
func fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// FuzzParse checks that Parse never panics and reports every failure as a
// FormatError, and that for a file it accepts, every tensor's data can be
// read and the first row of every supported tensor dequantized.
func FuzzParse(f *testing.F) {
	// Seeds from every fixture: the whole file as a plain test, and a
	// compact copy with the same header in both modes. The whole files are
	// left out while fuzzing because the engine re-decodes each corpus
	// entry from its text encoding in every worker round, which with
	// multi-megabyte entries brings it to a standstill (0 execs/s).
	for _, p := range fixtureFiles() {
		if !fuzzing() {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
		data, err := compactFixture(p)
		if err != nil {
			f.Fatalf("%s: %v", p, err)
		}
		f.Add(data)
	}
	for _, c := range []struct{ version, alignment uint32 }{{3, 0}, {2, 1}, {3, 64}} {
		raw, _, _ := buildFile(f, c.version, c.alignment)
		f.Add(raw)
	}
	w := NewWriter()
	w.SetStrings("tokenizer.ggml.tokens", []string{"<s>", "a"})
	w.SetBool("b", true)
	if err := w.AddTensor("q", Q4_K, []uint64{256, 1}, make([]byte, 144)); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("GGUF\x03\x00\x00\x00"))

	f.Fuzz(func(t *testing.T, data []byte) {
		gf, err := Parse(bytes.NewReader(data), int64(len(data)), "fuzz.gguf")
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FormatError: %v", err)
			}
			return
		}
		for _, kv := range gf.KVs {
			_ = kv.Value.String()
		}
		for i := range gf.Tensors {
			ti := &gf.Tensors[i]
			raw, err := gf.TensorData(ti)
			if !ti.Type.Supported() {
				if !errors.Is(err, ErrUnsupportedType) {
					t.Fatalf("tensor %q of type %s: want ErrUnsupportedType, got %v", ti.Name, ti.Type, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("tensor %q: %v", ti.Name, err)
			}
			if uint64(len(raw)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes, want %d", ti.Name, len(raw), ti.Size)
			}
			if ti.Elements() == 0 {
				continue
			}
			ne0 := int(ti.Ne(0))
			rowBytes, err := ti.Type.RowBytes(ne0)
			if err != nil {
				t.Fatalf("tensor %q: %v", ti.Name, err)
			}
			row := make([]float32, ne0)
			if err := DequantizeRow(ti.Type, raw[:rowBytes], row); err != nil {
				t.Fatalf("tensor %q: %v", ti.Name, err)
			}
			if err := gf.ReadTensorRows(ti, 0, 1, make([]byte, rowBytes)); err != nil {
				t.Fatalf("tensor %q: %v", ti.Name, err)
			}
		}
	})
}
