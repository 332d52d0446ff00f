// Package numtest holds numeric test helpers shared by the engine tests:
// logits comparisons with first-mismatch reports (on internal/numcmp), the
// fixture prompt and models, and the formula-defined golden model of
// spec/rwkv7.md §11.
package numtest

import "github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"

// Stats compares an implementation's values with a reference (numcmp.Stats).
type Stats = numcmp.Stats

// The comparison functions of internal/numcmp, under the names the tests use.
var (
	Compare             = numcmp.Compare
	FirstMismatch       = numcmp.FirstMismatch
	RowArgmaxMismatches = numcmp.RowArgmaxMismatches
	Describe            = numcmp.Describe
	ReadF32             = numcmp.ReadF32
)
