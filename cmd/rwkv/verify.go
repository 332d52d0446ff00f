package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numcmp"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// maxVerifyTokens bounds verify -n: enough for any check, small enough that
// the CPU reference finishes.
const maxVerifyTokens = 4096

type verifyOptions struct {
	model   string
	tokens  string
	n       int
	ref     string
	tol     float64
	streams int
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify -m MODEL.gguf [--tokens 0,795,156 | -n 32] [--ref logits.f32]",
		Short: "Check the GPU against the CPU reference (or a logits file) on this machine's adapter",
		Long: `Runs the tokens through the GPU engine token by token (seq) and as one
prefill (batch) and compares every position's logits with the CPU reference's
(or with --ref, float32 [T][V] as written by rwkv logits): relative L2 error,
max abs difference and argmax agreement. Fails when the error exceeds --tol or
an argmax differs, naming the first mismatching position and index.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.OutOrStdout(), cmd.ErrOrStderr(), o, g)
		},
	}
	cmd.Flags().StringVarP(&o.model, "model", "m", "", "GGUF model file")
	cmd.Flags().StringVar(&o.tokens, "tokens", "", "comma-separated token ids (default: -n pseudo-random ids)")
	cmd.Flags().IntVarP(&o.n, "n", "n", 32, "number of pseudo-random tokens when --tokens is not given, in [1, 4096]")
	cmd.Flags().StringVar(&o.ref, "ref", "", "reference logits file instead of the CPU reference")
	cmd.Flags().Float64Var(&o.tol, "tol", 1e-4, "largest relative L2 error accepted, in (0, 1)")
	cmd.Flags().IntVar(&o.streams, "streams", 0, "also run this many sequences at once through batched steps (prompts derived from the tokens) and compare each with the CPU reference alone")
	return cmd
}

func runVerify(stdout, stderr io.Writer, o *verifyOptions, g *globalFlags) error {
	if err := checkTolerance("--tol", o.tol); err != nil {
		return err
	}
	if o.tokens == "" {
		if err := checkInt("-n", o.n, 1, maxVerifyTokens); err != nil {
			return err
		}
	}
	lm, err := openModel(o.model)
	if err != nil {
		return err
	}
	defer lm.Close()
	c := lm.weights.Config
	var ids []int
	if o.tokens != "" {
		if ids, err = parseTokenIDs("--tokens", o.tokens, c.Vocab); err != nil {
			return err
		}
	} else {
		x := uint32(2024)
		for i := 0; i < o.n; i++ {
			x = x*1664525 + 1013904223
			ids = append(ids, int(x>>8)%c.Vocab)
		}
	}
	if o.streams != 0 {
		return verifyStreams(stdout, stderr, lm, ids, o, g)
	}
	ctx := context.Background()
	var ref []float32
	var refErr error // the CPU reference's non-finite logits
	refName := "cpu reference (batch)"
	if o.ref != "" {
		if ref, err = numcmp.ReadF32(o.ref); err != nil {
			return err
		}
		if len(ref) != len(ids)*c.Vocab {
			return fmt.Errorf("--ref %s holds %d values, expected %d tokens × %d", o.ref, len(ref), len(ids), c.Vocab)
		}
		if err := checkFinite("--ref "+o.ref, ref, c.Vocab); err != nil {
			return fmt.Errorf("%w: it cannot serve as a reference", err)
		}
		refName = o.ref
	} else if ref, err = computeLogits(ctx, cpuref.New(lm.weights), ids, "batch"); err != nil {
		// Engines refuse to return NaN or Inf; a model that gives them is
		// reported below, once the GPU has been tried too.
		if !errors.Is(err, model.ErrNonFinite) {
			return err
		}
		refErr = err
	}
	m, err := loadOn(lm, engineOptions{device: "gpu"}, g, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	eng := m.Engine
	fmt.Fprintf(stdout, "model %s, %d tokens, %s vs %s\n", o.model, len(ids), eng.Device(), refName)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\trel L2\tmax abs\targmax\tverdict")
	var failures []string
	bothNonFinite := 0
	for _, mode := range []string{"seq", "batch"} {
		got, gpuErr := computeLogits(ctx, eng, ids, mode)
		if gpuErr != nil && !errors.Is(gpuErr, model.ErrNonFinite) {
			return gpuErr
		}
		switch {
		case gpuErr != nil && refErr != nil:
			// Both engines agree that the model gives NaN or Inf: the
			// weights, not the GPU, are at fault.
			bothNonFinite++
			failures = append(failures, fmt.Sprintf("%s: both engines produce non-finite values: the GPU: %v; the CPU reference: %v", mode, gpuErr, refErr))
		case refErr != nil:
			failures = append(failures, fmt.Sprintf("%s: the CPU reference produces non-finite values (%v), the GPU none", mode, refErr))
		case gpuErr != nil:
			failures = append(failures, fmt.Sprintf("%s: the GPU produces non-finite values (%v), the CPU reference none", mode, gpuErr))
		}
		if gpuErr != nil || refErr != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tFAIL\n", mode)
			continue
		}
		s := numcmp.Compare(got, ref)
		bad := numcmp.RowArgmaxMismatches(got, ref, c.Vocab)
		verdict := "ok"
		if s.NonFinite > 0 || s.RelL2 > o.tol || len(bad) > 0 {
			verdict = "FAIL"
			i := numcmp.FirstMismatch(got, ref, 0, o.tol)
			if i < 0 {
				i = s.MaxAbsAt
			}
			failures = append(failures, fmt.Sprintf("%s: rel L2 %.3g (tolerance %g), %d non-finite, argmax differs at %v; first mismatch %s",
				mode, s.RelL2, o.tol, s.NonFinite, bad, numcmp.Describe(got, ref, i, c.Vocab)))
		}
		fmt.Fprintf(tw, "%s\t%.3g\t%.3g\t%d/%d\t%s\n", mode, s.RelL2, s.MaxAbs, len(ids)-len(bad), len(ids), verdict)
	}
	tw.Flush()
	for _, f := range failures {
		fmt.Fprintln(stdout, f)
	}
	switch {
	case len(failures) == 0:
		return nil
	case bothNonFinite == len(failures):
		return fmt.Errorf("both engines produce non-finite values (the model itself, see rwkv info --check %s)", o.model)
	default:
		return fmt.Errorf("the GPU does not match %s", refName)
	}
}
