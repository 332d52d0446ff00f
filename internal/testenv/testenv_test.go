package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records Skipf/Fatalf instead of stopping.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestMissingSkipsOrFails(t *testing.T) {
	cases := []struct {
		ci, gpu  string
		wantFail bool
	}{
		{"", "", false},
		{"0", "", false},
		{"1", "", true},
		{"true", "", true},
		{"", "1", true},
	}
	for _, c := range cases {
		t.Setenv("CI", c.ci)
		t.Setenv("RWKV_REQUIRE_GPU", c.gpu)
		r := &recorder{TB: t}
		NoGPU(r, "no adapter %d", 7)
		if failed := r.failed != ""; failed != c.wantFail {
			t.Errorf("CI=%q RWKV_REQUIRE_GPU=%q: failed=%v (%q), skipped %q; want failed=%v", c.ci, c.gpu, failed, r.failed, r.skipped, c.wantFail)
		}
		if r.failed == "" && r.skipped != "skipping: no adapter 7" {
			t.Errorf("skip reason %q", r.skipped)
		}
		// Fixtures follow CI only.
		r = &recorder{TB: t}
		Missing(r, CI(), "no fixtures")
		if wantFail := c.ci != "" && c.ci != "0"; (r.failed != "") != wantFail {
			t.Errorf("CI=%q: fixtures failed=%q skipped=%q, want failure %v", c.ci, r.failed, r.skipped, wantFail)
		}
	}
}
