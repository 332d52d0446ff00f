package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

type runOptions struct {
	model  string
	prompt string
	n      int
	device string
}

func newRunCmd(g *globalFlags) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run -m MODEL.gguf -p TEXT [-n 32]",
		Short: "Continue a prompt with greedy decoding and stream the text",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.OutOrStdout(), cmd.ErrOrStderr(), o, g)
		},
	}
	cmd.Flags().StringVarP(&o.model, "model", "m", "", "GGUF model file")
	cmd.Flags().StringVarP(&o.prompt, "prompt", "p", "", "prompt text")
	cmd.Flags().IntVarP(&o.n, "tokens", "n", 32, "number of tokens to generate")
	cmd.Flags().StringVar(&o.device, "device", "auto", "gpu, cpu, or auto (the GPU when there is one)")
	return cmd
}

func runRun(stdout, stderr io.Writer, o *runOptions, g *globalFlags) error {
	if o.n < 0 {
		return fmt.Errorf("-n %d: expected a non-negative count", o.n)
	}
	m, err := openRWKV(o.model, engineOptions{device: o.device, seqs: 1}, g, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, eng := m.Tokenizer, m.Engine
	ids, err := tok.Encode([]byte(o.prompt))
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("the prompt is empty: pass -p TEXT")
	}
	s, err := eng.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()

	ctx := context.Background()
	// next runs tokens (nil: the token chosen last, fed on the device) and
	// returns the greedy choice, chosen on the device.
	next := func(tokens []int) (int, error) {
		r, err := eng.Step(ctx, []model.Seq{{Session: s, Tokens: tokens, Continue: tokens == nil, Want: model.WantToken}})
		if err != nil {
			return 0, err
		}
		return r[0].Token, nil
	}
	start := time.Now()
	id, err := next(ids)
	if err != nil {
		return err
	}
	prefill := time.Since(start)
	dec := tok.NewStreamDecoder()
	start = time.Now()
	generated := 0
	for generated < o.n && id != 0 { // id 0 ends the text
		text, err := dec.Add(id)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(text); err != nil {
			return err
		}
		generated++
		if generated == o.n {
			break
		}
		if id, err = next(nil); err != nil {
			return err
		}
	}
	if _, err := stdout.Write(dec.Flush()); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if g.verbose {
		decode := time.Since(start)
		fmt.Fprintf(stderr, "device %s: prompt %d tokens in %v (%.1f t/s), generated %d tokens in %v (%.1f t/s)\n",
			eng.Device(), len(ids), prefill.Round(time.Millisecond), float64(len(ids))/prefill.Seconds(),
			generated, decode.Round(time.Millisecond), float64(generated)/decode.Seconds())
	}
	return nil
}
