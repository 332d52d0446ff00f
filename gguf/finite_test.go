package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

// nonFiniteFile builds a file whose tensors hold NaN/Inf at known places.
// want maps each tensor to the hand-computed count and first index.
func nonFiniteFile(t *testing.T) ([]byte, map[string]NonFinite) {
	t.Helper()
	w := NewWriter()
	add := func(name string, typ Type, dims []uint64, data []byte) {
		t.Helper()
		if err := w.AddTensor(name, typ, dims, data); err != nil {
			t.Fatal(err)
		}
	}
	// F32 across several scan chunks: +Inf at 150000, -Inf at the end.
	big := make([]byte, 4*200000)
	binary.LittleEndian.PutUint32(big[4*150000:], math.Float32bits(float32(math.Inf(1))))
	binary.LittleEndian.PutUint32(big[4*199999:], math.Float32bits(float32(math.Inf(-1))))
	add("f32.big", F32, []uint64{1000, 200}, big)
	// F16: +Inf (0x7c00) at 3.
	h := make([]byte, 16)
	binary.LittleEndian.PutUint16(h[6:], 0x7c00)
	add("f16", F16, []uint64{8}, h)
	// BF16: -Inf (0xff80) at 2 and NaN (0x7fc0) at 3.
	bf := make([]byte, 8)
	binary.LittleEndian.PutUint16(bf[4:], 0xff80)
	binary.LittleEndian.PutUint16(bf[6:], 0x7fc0)
	add("bf16", BF16, []uint64{4}, bf)
	// Q8_0, 4 blocks of 32: scale 1.0 everywhere except block 2, whose
	// scale is NaN (0x7e00): elements 64..95 are NaN.
	q8 := make([]byte, 4*34)
	for b := 0; b < 4; b++ {
		d := uint16(0x3c00)
		if b == 2 {
			d = 0x7e00
		}
		binary.LittleEndian.PutUint16(q8[34*b:], d)
		for i := 0; i < 32; i++ {
			q8[34*b+2+i] = 1
		}
	}
	add("q8_0", Q8_0, []uint64{64, 2}, q8)
	// Q4_K: d = +Inf with zero scales: Inf·0 = NaN in all 256 elements.
	q4k := make([]byte, 144)
	binary.LittleEndian.PutUint16(q4k, 0x7c00)
	add("q4_k", Q4_K, []uint64{256}, q4k)
	// A clean tensor.
	clean := make([]byte, 34)
	binary.LittleEndian.PutUint16(clean, 0x3c00)
	add("q8_0.clean", Q8_0, []uint64{32}, clean)

	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), map[string]NonFinite{
		"f32.big":    {Count: 2, First: 150000, Elements: 200000},
		"f16":        {Count: 1, First: 3, Elements: 8},
		"bf16":       {Count: 2, First: 2, Elements: 4},
		"q8_0":       {Count: 32, First: 64, Elements: 128},
		"q4_k":       {Count: 256, First: 0, Elements: 256},
		"q8_0.clean": {Count: 0, Elements: 32},
	}
}

func checkScan(t *testing.T, f *File, want map[string]NonFinite) {
	t.Helper()
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		got, err := f.ScanNonFinite(ti)
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		w := want[ti.Name]
		if got.Count != w.Count || got.Elements != w.Elements || (w.Count > 0 && got.First != w.First) {
			t.Errorf("%s: count %d first %d of %d, want count %d first %d of %d", ti.Name, got.Count, got.First, got.Elements, w.Count, w.First, w.Elements)
		}
		if w.Count > 0 && !math.IsNaN(float64(got.FirstValue)) && !math.IsInf(float64(got.FirstValue), 0) {
			t.Errorf("%s: first value %v is finite", ti.Name, got.FirstValue)
		}
	}
}

func TestScanNonFinite(t *testing.T) {
	raw, want := nonFiniteFile(t)
	// Read through io.ReaderAt (bounded buffers) and through the mapping.
	f, err := Parse(bytes.NewReader(raw), int64(len(raw)), "mem.gguf")
	if err != nil {
		t.Fatal(err)
	}
	checkScan(t, f, want)
	path := filepath.Join(t.TempDir(), "nonfinite.gguf")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mf, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	checkScan(t, mf, want)

	bad := TensorInfo{Name: "x", Type: Type(19), Dims: []uint64{256}}
	if _, err := f.ScanNonFinite(&bad); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("unsupported type: got %v, want ErrUnsupportedType", err)
	}
}

// TestFixturesAreFinite: the llama.cpp-written fixtures, whose reference
// logits are finite, hold no NaN or Inf in any tensor of any type.
func TestFixturesAreFinite(t *testing.T) {
	dir := fixtures.Path(t, "tiny")
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range es {
		if !strings.HasSuffix(e.Name(), ".gguf") {
			continue
		}
		files++
		f, err := Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Tensors {
			r, err := f.ScanNonFinite(&f.Tensors[i])
			if err != nil {
				t.Fatalf("%s %s: %v", e.Name(), f.Tensors[i].Name, err)
			}
			if r.Count > 0 || r.Elements != f.Tensors[i].Elements() {
				t.Errorf("%s %s: %d non-finite of %d scanned (first %d)", e.Name(), f.Tensors[i].Name, r.Count, r.Elements, r.First)
			}
		}
		f.Close()
	}
	if files != 13 {
		t.Errorf("%d fixture files, want 13", files)
	}
}
