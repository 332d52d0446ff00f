package main

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// judge decides whether an engine's logits match a reference's.
type judge struct {
	tol    float64 // largest relative L2 error accepted
	tieGap float64 // an argmax change is a near tie where the reference's top two differ by at most this
	vocab  int
}

// newJudge returns the judge for a model whose float32 noise (the CPU
// reference with float32 sums against float64 sums) is noise: tolerance
// max(minTol, factor × noise rel L2), near ties within factor × noise max abs.
func newJudge(minTol, factor float64, noise numcmp.Stats, vocab int) judge {
	return judge{tol: max(minTol, factor*noise.RelL2), tieGap: factor * noise.MaxAbs, vocab: vocab}
}

// verdict is the comparison of one run's logits with the reference.
type verdict struct {
	stats    numcmp.Stats
	argmax   []int // positions whose argmax differs (not a near tie)
	nearTies []int // positions whose argmax differs within the judge's tie gap
}

// check compares got with ref, [T][V] each.
func (j judge) check(got, ref []float32) verdict {
	v := verdict{stats: numcmp.Compare(got, ref)}
	V := j.vocab
	for _, p := range numcmp.RowArgmaxMismatches(got, ref, V) {
		row := ref[p*V : (p+1)*V]
		picked := model.Argmax(got[p*V : (p+1)*V])
		gap := float64(row[model.Argmax(row)]) - float64(row[max(picked, 0)])
		if picked >= 0 && gap <= j.tieGap {
			v.nearTies = append(v.nearTies, p)
		} else {
			v.argmax = append(v.argmax, p)
		}
	}
	return v
}

// failed reports whether the run does not match: non-finite values, an
// error above the tolerance, or an argmax change that is not a near tie.
func (v verdict) failed(j judge) bool {
	return v.stats.NonFinite > 0 || v.stats.RelL2 > j.tol || len(v.argmax) > 0
}

// describe says why the run failed, with its first mismatch.
func (v verdict) describe(got, ref []float32, j judge) string {
	i := numcmp.FirstMismatch(got, ref, 0, j.tol)
	if i < 0 {
		i = v.stats.MaxAbsAt
	}
	return fmt.Sprintf("rel L2 %.3g (tolerance %.3g), %d non-finite, argmax differs at %v; first mismatch %s",
		v.stats.RelL2, j.tol, v.stats.NonFinite, v.argmax, numcmp.Describe(got, ref, i, j.vocab))
}
