package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/internal/outfile"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

type logitsOptions struct {
	model  string
	tokens string
	device string
	mode   string
	out    string
}

func newLogitsCmd(g *globalFlags) *cobra.Command {
	o := &logitsOptions{}
	cmd := &cobra.Command{
		Use:   "logits -m MODEL.gguf --tokens 0,795,156 -o OUT.f32",
		Short: "Write the logits of every position as little-endian float32 [T][V], no header",
		Long: `Runs the token ids from a fresh state and writes the logits of every position
as little-endian float32, T rows of V values, no header. --mode seq feeds one
token per call; --mode batch feeds the whole sequence as one prefill. This is
the contract for checking the engine against other implementations.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogits(o, g)
		},
	}
	cmd.Flags().StringVarP(&o.model, "model", "m", "", "GGUF model file")
	cmd.Flags().StringVar(&o.tokens, "tokens", "", "comma-separated token ids")
	cmd.Flags().StringVar(&o.device, "device", "cpu", "cpu (the reference), gpu, or auto")
	cmd.Flags().StringVar(&o.mode, "mode", "seq", "seq (one token per call) or batch (one prefill)")
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "output file (float32 [T][V], little-endian)")
	return cmd
}

func runLogits(o *logitsOptions, g *globalFlags) error {
	if o.out == "" {
		return fmt.Errorf("no output file: pass -o OUT.f32")
	}
	if o.mode != "seq" && o.mode != "batch" {
		return fmt.Errorf("--mode %q: expected seq or batch", o.mode)
	}
	if err := outfile.Check(o.out, o.model); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	m, err := openRWKV(o.model, engineOptions{device: o.device}, g, os.Stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	ids, err := parseTokenIDs("--tokens", o.tokens, m.Config.Vocab)
	if err != nil {
		return err
	}
	eng := m.Engine
	logits, err := computeLogits(context.Background(), eng, ids, o.mode)
	if err != nil {
		return err
	}
	if err := checkFinite("the logits", logits, eng.Config().Vocab); err != nil {
		return err
	}
	if err := outfile.Write(o.out, func(w io.Writer) error { return writeFloat32s(w, logits) }, o.model); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}

// computeLogits runs ids from a fresh state and returns [T][V] logits.
func computeLogits(ctx context.Context, eng model.Engine, ids []int, mode string) ([]float32, error) {
	s, err := eng.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if mode == "batch" {
		return model.Forward(ctx, eng, s, ids, model.WantAll)
	}
	out := make([]float32, 0, len(ids)*eng.Config().Vocab)
	for _, id := range ids {
		l, err := model.Forward(ctx, eng, s, []int{id}, model.WantLast)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}

// writeFloat32s writes values as little-endian float32.
func writeFloat32s(w io.Writer, values []float32) error {
	buf := make([]byte, 4*4096)
	for len(values) > 0 {
		n := min(len(values), 4096)
		for i, v := range values[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}
