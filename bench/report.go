package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// WriteTable prints results as a markdown table with llama-bench's columns
// (model, size, params, backend, test, t/s) and, beside them, what bounds
// each test: decode (tg) rows give GB/s against the streaming-read probe,
// prefill (pp) rows matrix GFLOP/s against the multiply-add probe. A
// fraction above 100% is marked with * and explained under the table.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| model\t size\t params\t backend\t test\t t/s\t GB/s\t GFLOP/s\t of probe\t disp/tok\t peak GPU mem\t")
	fmt.Fprintln(tw, "| ---\t ---:\t ---:\t ---\t ---\t ---:\t ---:\t ---:\t ---:\t ---:\t ---:\t")
	var overRead, overFMA bool
	for _, r := range rs {
		gb, gflop, probe := "-", "-", "-"
		switch {
		case r.MatrixFLOPs > 0:
			gflop = fmt.Sprintf("%.2f", r.GFLOPPerS)
			if r.FMAProbeGFLOPPerS > 0 {
				probe = fmtFraction(r.FMAFraction, &overFMA) + fmt.Sprintf(" of %.1f GFLOP/s fma", r.FMAProbeGFLOPPerS)
			}
		case r.BytesPerStep > 0:
			gb = fmt.Sprintf("%.2f", r.GBPerS)
			if r.RooflineGBPerS > 0 {
				probe = fmtFraction(r.RooflineFraction, &overRead) + fmt.Sprintf(" of %.1f GB/s read", r.RooflineGBPerS)
			}
		}
		disp, peak := "-", "-"
		if r.DispatchesPerToken > 0 {
			disp = strconv.Itoa(r.DispatchesPerToken)
		}
		if r.PeakGPUBytes > 0 {
			peak = fmtBytes(int64(r.PeakGPUBytes))
		}
		fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t %s\t %.2f ± %.2f\t %s\t %s\t %s\t %s\t %s\t\n",
			r.Model+" "+r.Type, fmtBytes(r.SizeBytes), fmtParams(r.Params), r.Backend, r.Test,
			r.TokensPerS, r.Stddev, gb, gflop, probe, disp, peak)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if overRead {
		fmt.Fprintln(w, "\n"+footnoteRead)
	}
	if overFMA {
		fmt.Fprintln(w, "\n"+footnoteFMA)
	}
	for _, r := range rs {
		if len(r.Profile) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nprofile of one %s decode step of %s (%s):\n", r.Test, r.Model, r.ProfileMethod)
		pw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(pw, "  kernel\tµs/token\tshare\tGB/s\troofline")
		over := false
		for _, k := range r.Profile {
			bw, roof := "", ""
			if k.GBPerS > 0 {
				bw = fmt.Sprintf("%.2f", k.GBPerS)
				if r.RooflineGBPerS > 0 {
					roof = fmtFraction(Fraction(k.GBPerS, r.RooflineGBPerS), &over)
				}
			}
			fmt.Fprintf(pw, "  %s\t%.1f\t%.1f%%\t%s\t%s\n", k.Kernel, k.MicrosPerTk, 100*k.Share, bw, roof)
		}
		if err := pw.Flush(); err != nil {
			return err
		}
		if over {
			fmt.Fprintln(w, footnoteRead)
		}
		if r.HostStepMicros > 0 {
			fmt.Fprintf(w, "  host: %.1f µs to record and encode one decode step (%.1f µs record, %.1f µs encode), %.2f µs per dispatch (measured without running the steps)\n",
				r.HostStepMicros, r.HostRecordMicros, r.HostEncodeMicros, r.HostDispatchMicros)
		}
	}
	return nil
}

// Footnotes for fractions above 100% of a probe (the probe column names
// which probe a row is compared with).
const (
	footnoteRead = "* above 100% of the read probe: the bytes counted per step were not all read from memory " +
		"(weights or state served from a cache that the probe's larger buffer does not fit in, as for a model smaller than the cache)"
	footnoteFMA = "* above 100% of the fma probe: the probe fell short of the device's peak " +
		"(too little work to fill it, or clocks still ramping), so the fraction overstates"
)

// fmtFraction formats a fraction as a percentage, marked with * above 100%
// (and then sets *over).
func fmtFraction(f float64, over *bool) string {
	if f > 1 {
		*over = true
		return fmt.Sprintf("%.1f%%*", 100*f)
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

// WriteJSON prints one JSON object per result, one per line.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// csvHeader lists the CSV columns (the JSON field names).
var csvHeader = []string{"model", "type", "size_bytes", "params", "device", "backend", "test", "batch", "tokens_per_s", "stddev",
	"reps", "bytes_per_step", "gb_per_s", "roofline_gb_per_s", "roofline_fraction",
	"matrix_flops", "gflop_per_s", "fma_probe_gflop_per_s", "fma_fraction", "dispatches_per_token", "peak_gpu_bytes"}

// WriteCSV prints a header and one row per result.
func WriteCSV(w io.Writer, rs []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, r := range rs {
		row := []string{r.Model, r.Type, strconv.FormatInt(r.SizeBytes, 10), strconv.FormatUint(r.Params, 10), r.Device, r.Backend,
			r.Test, strconv.Itoa(r.Batch), f(r.TokensPerS), f(r.Stddev), strconv.Itoa(r.Reps), strconv.FormatInt(r.BytesPerStep, 10),
			f(r.GBPerS), f(r.RooflineGBPerS), f(r.RooflineFraction),
			strconv.FormatInt(r.MatrixFLOPs, 10), f(r.GFLOPPerS), f(r.FMAProbeGFLOPPerS), f(r.FMAFraction),
			strconv.Itoa(r.DispatchesPerToken), strconv.FormatUint(r.PeakGPUBytes, 10)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
}

func fmtParams(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	default:
		return strings.TrimSpace(fmt.Sprintf("%d", n))
	}
}

// CPUReadBandwidth measures the host's streaming-read bandwidth in bytes/s:
// every core sums its share of a buffer of size bytes; best of reps runs.
func CPUReadBandwidth(size int, reps int) float64 {
	buf := make([]float32, size/4)
	for i := range buf {
		buf[i] = float32(i & 7)
	}
	workers := runtime.GOMAXPROCS(0)
	best := time.Duration(0)
	sums := make([]float32, workers)
	for rep := 0; rep <= max(reps, 1); rep++ {
		start := time.Now()
		var wg sync.WaitGroup
		chunk := len(buf) / workers
		for wi := 0; wi < workers; wi++ {
			wg.Add(1)
			go func(part []float32, out *float32) {
				defer wg.Done()
				var a, b, c, d float32
				for i := 0; i+3 < len(part); i += 4 {
					a += part[i]
					b += part[i+1]
					c += part[i+2]
					d += part[i+3]
				}
				*out = a + b + c + d
			}(buf[wi*chunk:(wi+1)*chunk], &sums[wi])
		}
		wg.Wait()
		t := time.Since(start)
		if rep > 0 && (best == 0 || t < best) {
			best = t
		}
	}
	return float64(size) / best.Seconds()
}
