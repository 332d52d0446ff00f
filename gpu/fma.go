package gpu

import (
	"fmt"
	"math"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// fmaParams mirrors FmaParams of shaders/fma.wgsl.
type fmaParams struct {
	iters uint32  // multiply-adds per chain
	m, c  float32 // a ← a·m + c
}

func (p fmaParams) words() []uint32 {
	return []uint32{p.iters, math.Float32bits(p.m), math.Float32bits(p.c), 0}
}

// fmaProbe is the recurrence the probe runs: m = 1 − 2^-11 and c = 2^-11
// (fixed point 1), 4096 steps, so that a = 1 + (a₀ − 1)·m⁴⁰⁹⁶ keeps
// e^-2 ≈ 13.5% of its start and the result shows how many steps ran.
var fmaProbe = fmaParams{iters: 4096, m: 1 - 1.0/2048, c: 1.0 / 2048}

// fmaStart is lane k of chain j of invocation i at the start (fma_start).
func fmaStart(i, j, k uint32) float64 {
	return float64(i%64)/16 + float64(j)/4 + float64(k)/32
}

// fmaExpected is invocation i's output in exact arithmetic: the sum over 8
// chains × 4 lanes of fp + (a₀ − fp)·m^iters, fp = c/(1 − m).
func fmaExpected(p fmaParams, i uint32) float64 {
	m, c := float64(p.m), float64(p.c)
	fp := c / (1 - m)
	decay := math.Pow(m, float64(p.iters))
	var s float64
	for j := uint32(0); j < 8; j++ {
		for k := uint32(0); k < 4; k++ {
			s += fp + (fmaStart(i, j, k)-fp)*decay
		}
	}
	return s
}

// fmaTolerance bounds |out[i] − fmaExpected| from float32 rounding: each
// step rounds a value below 6 by at most 2 half-ulps (4.8e-7, unfused),
// damped by m, so a lane drifts at most 4.8e-7/(1 − m) ≈ 1e-3 from the
// exact value; 32 lanes and the final sums stay below 0.04.
const fmaTolerance = 0.04

// checkFMA compares the probe's outputs with the closed form and returns an
// error naming the first invocation that is off (work dropped or wrong).
func checkFMA(p fmaParams, out []float32) error {
	for i, got := range out {
		want := fmaExpected(p, uint32(i))
		if !(math.Abs(float64(got)-want) <= fmaTolerance) {
			return fmt.Errorf("gpu: multiply-add probe: invocation %d computed %g, expected %.6g: the device did not run the %d steps", i, got, want, p.iters)
		}
	}
	return nil
}

// MultiplyAddRate measures the device's float32 arithmetic throughput in
// FLOP/s (2 per multiply-add) with the fma.wgsl probe: invocations running
// dependent multiply-add chains. The grid grows until one dispatch takes 2 ms
// (or 4096 workgroups of 256), then each timed run submits enough
// dispatches to last about 20 ms (at most 16); the best of reps runs after a
// warm-up counts. The outputs of the last run are checked on the host.
func (d *Device) MultiplyAddRate(reps int) (float64, error) {
	src, err := shaders.Source("fma.wgsl", map[string]string{"WG": "256"})
	if err != nil {
		return 0, err
	}
	k, err := d.Kernel("fma.wgsl", src, "fma_chains")
	if err != nil {
		return 0, err
	}
	const wg, maxGroups = 256, 4096
	out, err := d.NewBuffer("fma probe out", 4*wg*maxGroups)
	if err != nil {
		return 0, err
	}
	defer out.Release()
	params, err := d.Params(fmaProbe.words()...)
	if err != nil {
		return 0, err
	}
	run := func(groups uint32, passes int) (time.Duration, error) {
		r := d.NewRecorder()
		for i := 0; i < passes; i++ {
			r.Dispatch(k, []Binding{{Buf: out}, {Buf: params}}, groups, 1, 1)
		}
		start := time.Now()
		if err := r.Submit(); err != nil {
			return 0, err
		}
		if err := d.Wait(); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	groups := uint32(16)
	if _, err := run(groups, 1); err != nil { // warm-up: pipeline, first submit
		return 0, err
	}
	var one time.Duration
	for {
		if one, err = run(groups, 1); err != nil {
			return 0, err
		}
		if one >= 2*time.Millisecond || groups >= maxGroups {
			break
		}
		groups *= 4
	}
	passes := min(max(int(20*time.Millisecond/max(one, time.Microsecond)), 1), 16)
	best := time.Duration(0)
	for i := 0; i < max(reps, 1); i++ {
		t, err := run(groups, passes)
		if err != nil {
			return 0, err
		}
		if best == 0 || t < best {
			best = t
		}
	}
	got, err := d.ReadF32(out, 0, int(groups*wg))
	if err != nil {
		return 0, err
	}
	if err := checkFMA(fmaProbe, got); err != nil {
		return 0, err
	}
	flops := 2 * 32 * float64(fmaProbe.iters) * float64(groups*wg) * float64(passes)
	return flops / best.Seconds(), nil
}
