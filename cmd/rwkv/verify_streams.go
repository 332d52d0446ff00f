package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/internal/streams"
)

// maxStreams bounds --streams (each stream needs a state slot).
const maxStreams = 256

// verifyStreams runs o.streams sequences, with prompts cut from ids,
// through streams.Run's schedule of batched steps on the GPU (prefill and
// decode mixed, sequences joining and leaving) and compares each with the
// CPU reference alone. Its last line is the worst relative L2 error.
func verifyStreams(stdout, stderr io.Writer, lm *loadedModel, ids []int, o *verifyOptions, g *globalFlags) error {
	if o.streams < 1 || o.streams > maxStreams {
		return fmt.Errorf("--streams %d: expected a number of sequences from 1 to %d", o.streams, maxStreams)
	}
	// Passes of 16 tokens, so that the steps of long prompts split.
	m, err := loadOn(lm, engineOptions{device: "gpu", seqs: o.streams, chunk: 16}, g, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx := context.Background()
	prompts := streams.Prompts(ids, o.streams)
	got, err := streams.Run(ctx, m.Engine, prompts)
	if err != nil {
		return fmt.Errorf("running %d streams on %s: %w", o.streams, m.Device(), err)
	}
	longest := 0
	for _, p := range prompts {
		longest = max(longest, len(p))
	}
	fmt.Fprintf(stdout, "model %s, %d streams (prompts of 1 to %d tokens cut from %d ids), %s vs cpu reference alone\n",
		o.model, o.streams, longest, len(ids), m.Device())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "stream\ttokens\tlogits rows\tchosen\trel L2\tmax abs\targmax\tverdict")
	ref := cpuref.New(lm.weights)
	worst := 0.0
	var failures []string
	for _, q := range got {
		c, err := streams.Compare(ctx, ref, q)
		if err != nil {
			return err
		}
		worst = max(worst, c.Stats.RelL2)
		verdict := "ok"
		if c.Stats.RelL2 > o.tol || c.Stats.NonFinite > 0 || len(c.ArgmaxDiffs) > 0 {
			verdict = "FAIL"
			failures = append(failures, fmt.Sprintf("%s: rel L2 %.3g (tolerance %g), %d non-finite, argmax differs at positions %v; largest difference %s",
				c.Name, c.Stats.RelL2, o.tol, c.Stats.NonFinite, c.ArgmaxDiffs, c.First))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3g\t%.3g\t%d/%d\t%s\n", c.Name, c.Tokens, c.Rows, len(q.Chosen),
			c.Stats.RelL2, c.Stats.MaxAbs, c.Rows+len(q.Chosen)-len(c.ArgmaxDiffs), c.Rows+len(q.Chosen), verdict)
	}
	tw.Flush()
	for _, f := range failures {
		fmt.Fprintln(stdout, f)
	}
	fmt.Fprintf(stdout, "worst relative L2 over %d streams: %.3g\n", len(got), worst)
	if len(failures) > 0 {
		return fmt.Errorf("%d of %d streams do not match the CPU reference", len(failures), len(got))
	}
	return nil
}
