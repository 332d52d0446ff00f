package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/outfile"
	"github.com/rwkv-gpu/rwkv-gpu/internal/synth"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

type synthOptions struct {
	preset string
	typ    string
	out    string
	seed   uint64
}

func newSynthCmd(g *globalFlags) *cobra.Command {
	o := &synthOptions{}
	cmd := &cobra.Command{
		Use:   "synth --preset 0.1b --type q8_0 -o FILE.gguf [--seed 1]",
		Short: "Write a synthetic RWKV-7 model (random weights, real shapes and World vocabulary) for tests and benchmarks",
		Long: "Write a synthetic RWKV-7 GGUF model: the shape of a published model (" +
			strings.Join(synth.PresetNames(), ", ") + "), the World vocabulary, the metadata and " +
			"per-tensor types of a llama.cpp file of the chosen type, and random weights scaled like " +
			"a real model's. The same preset, type and seed always give the same file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSynth(cmd.OutOrStdout(), os.Stderr, o)
		},
	}
	cmd.Flags().StringVar(&o.preset, "preset", "", "model shape: "+strings.Join(synth.PresetNames(), ", "))
	cmd.Flags().StringVar(&o.typ, "type", "", "storage type of the main matrices: "+synthTypeNames())
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "GGUF file to write")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "random seed")
	return cmd
}

// synthTypeNames lists the accepted --type values.
func synthTypeNames() string {
	names := make([]string, len(gguf.SupportedTypes))
	for i, t := range gguf.SupportedTypes {
		names[i] = strings.ToLower(t.String())
	}
	return strings.Join(names, ", ")
}

// parseSynthType accepts the name of a supported weight type, any case.
func parseSynthType(name string) (gguf.Type, error) {
	if t, err := gguf.ParseType(name); err == nil && slices.Contains(gguf.SupportedTypes, t) {
		return t, nil
	}
	return 0, fmt.Errorf("unknown --type %q (valid: %s)", name, synthTypeNames())
}

func runSynth(stdout io.Writer, stderr *os.File, o *synthOptions) error {
	if o.preset == "" {
		return fmt.Errorf("no --preset given (valid: %s)", strings.Join(synth.PresetNames(), ", "))
	}
	p, err := synth.PresetByName(o.preset)
	if err != nil {
		return err
	}
	if o.typ == "" {
		return fmt.Errorf("no --type given (valid: %s)", synthTypeNames())
	}
	t, err := parseSynthType(o.typ)
	if err != nil {
		return err
	}
	if o.out == "" {
		return fmt.Errorf("no output file given: pass -o FILE.gguf")
	}
	if err := outfile.Check(o.out); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	opt := synth.Options{Preset: p, Type: t, Seed: o.seed}
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		opt.Progress = func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription(fmt.Sprintf("synth %s %s", p.Name, t)),
					progressbar.OptionShowBytes(true),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionShowCount(),
					progressbar.OptionClearOnFinish(),
				)
			}
			_ = bar.Set64(done) // drawing errors do not matter
		}
	}
	start := time.Now()
	err = synth.Write(o.out, opt)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if st, err := os.Stat(o.out); err == nil && !st.Mode().IsRegular() {
		// A device or a FIFO: nothing to read back.
		fmt.Fprintf(stdout, "wrote %s: %s %s seed %d, %.2f s\n", o.out, p.Name, t, o.seed, elapsed.Seconds())
		return nil
	}
	f, err := gguf.Open(o.out)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(stdout, "wrote %s: %s, %s %s seed %d, %.1fM params, %.2f s\n",
		o.out, humanBytes(f.Size), p.Name, t, o.seed, float64(model.ParamCount(f))/1e6, elapsed.Seconds())
	return nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
