package numcmp

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestCompare(t *testing.T) {
	ref := []float32{3, 4, 0, -1}
	got := []float32{3, 4, 0.5, -1}
	s := Compare(got, ref)
	// ‖(0,0,0.5,0)‖ / ‖(3,4,0,-1)‖ = 0.5/√26
	if want := 0.5 / math.Sqrt(26); math.Abs(s.RelL2-want) > 1e-12 || s.MaxAbs != 0.5 || s.MaxAbsAt != 2 {
		t.Fatalf("Compare = %+v, want rel L2 %g, max abs 0.5 at 2", s, want)
	}
	got[3] = float32(math.NaN())
	if s := Compare(got, ref); s.NonFinite != 1 {
		t.Fatalf("NaN not counted: %+v", s)
	}
	if i := FirstMismatch(got, ref, 0.1, 0); i != 2 {
		t.Fatalf("FirstMismatch = %d, want 2", i)
	}
	if i := FirstMismatch(ref, ref, 0, 0); i != -1 {
		t.Fatalf("FirstMismatch of equal slices = %d", i)
	}
	rows := RowArgmaxMismatches([]float32{1, 2, 5, 3}, []float32{1, 2, 3, 5}, 2)
	if len(rows) != 1 || rows[0] != 1 {
		t.Fatalf("RowArgmaxMismatches = %v, want [1]", rows)
	}
	if d := Describe(ref, ref, 3, 2); d != "position 1, index 1: got -1, want -1" {
		t.Fatalf("Describe = %q", d)
	}
}

func TestReadF32(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.f32")
	if err := os.WriteFile(p, []byte{0, 0, 128, 63, 0, 0, 0, 64}, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := ReadF32(p)
	if err != nil || len(v) != 2 || v[0] != 1 || v[1] != 2 {
		t.Fatalf("ReadF32 = %v, %v", v, err)
	}
	if err := os.WriteFile(p, []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadF32(p); err == nil {
		t.Fatal("a 3-byte file must be refused")
	}
}
