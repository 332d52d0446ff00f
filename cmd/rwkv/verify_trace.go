package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// traceFirstToken runs one token through the engine, the CPU reference and
// the CPU reference with float32 sums, and prints, layer by layer, how far
// the engine's and the float32 run's states are from the reference's:
// relative L2 of the time-mix shift (ln1 of the layer's input), the
// channel-mix shift (ln2 after the time mix) and the WKV state. Where the
// engine's error jumps in the same layers as the float32 run's, the model is
// amplifying rounding there; a jump of the engine's alone points at a kernel.
func traceFirstToken(w io.Writer, eng model.Engine, weights *model.Weights, token int) error {
	state := func(e model.Engine) (*model.State, error) {
		s, err := e.NewSession()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if _, err := s.Forward([]int{token}, model.OutputLast); err != nil {
			return nil, err
		}
		return s.State()
	}
	got, err := state(eng)
	if err != nil {
		return fmt.Errorf("trace: %s: %w", eng.Device(), err)
	}
	ref, err := state(cpuref.New(weights))
	if err != nil {
		return fmt.Errorf("trace: cpu reference: %w", err)
	}
	f32 := model.NewState(weights.Config)
	if _, err := cpuref.Float32Forward(weights, f32, []int{token}); err != nil {
		return fmt.Errorf("trace: float32 sums: %w", err)
	}
	fmt.Fprintf(w, "\nstate after token %d, relative L2 distance from the CPU reference (float64 sums):\n", token)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tgpu att\tgpu ffn\tgpu wkv\tf32 att\tf32 ffn\tf32 wkv")
	rel := func(a, b []float32) float64 { return numcmp.Compare(a, b).RelL2 }
	for l := 0; l < weights.Config.Layers; l++ {
		fmt.Fprintf(tw, "%d\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\n", l,
			rel(got.AttShift(l), ref.AttShift(l)), rel(got.FfnShift(l), ref.FfnShift(l)), rel(got.WKV(l), ref.WKV(l)),
			rel(f32.AttShift(l), ref.AttShift(l)), rel(f32.FfnShift(l), ref.FfnShift(l)), rel(f32.WKV(l), ref.WKV(l)))
	}
	return tw.Flush()
}
