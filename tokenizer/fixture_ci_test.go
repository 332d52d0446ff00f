package tokenizer

import (
	"fmt"
	"testing"
)

// failRecorder is a testing.TB that records failures and skips instead of
// stopping the goroutine.
type failRecorder struct {
	testing.TB
	failed, skipped []string
}

func (r *failRecorder) Helper() {}
func (r *failRecorder) Fatalf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *failRecorder) Skipf(format string, args ...any) {
	r.skipped = append(r.skipped, fmt.Sprintf(format, args...))
}

// TestOptionalFixtureFailsUnderCI: the helper behind the World-vocabulary
// tests swallowed the missing-fixture failure even under CI, so
// TestEscapeMatchesGGUF skipped there. Under CI a missing fixture must fail;
// without CI the fuzz target may still fall back quietly.
func TestOptionalFixtureFailsUnderCI(t *testing.T) {
	t.Setenv("RWKV_FIXTURES", t.TempDir()+"/missing")
	t.Setenv("CI", "1")
	r := &failRecorder{TB: t}
	optionalFixture(r, "vocab", "rwkv-world-vocab.gguf")
	if len(r.failed) == 0 {
		t.Errorf("CI set, fixtures missing: optionalFixture did not fail (skips: %q)", r.skipped)
	}
	t.Setenv("CI", "")
	r = &failRecorder{TB: t}
	if p := optionalFixture(r, "vocab", "rwkv-world-vocab.gguf"); p != "" || len(r.failed)+len(r.skipped) > 0 {
		t.Errorf("without CI: got %q, failures %q, skips %q; want a quiet \"\"", p, r.failed, r.skipped)
	}
}
