package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

type infoOptions struct {
	check    bool
	tensors  bool
	metadata bool
	json     bool
}

func newInfoCmd(g *globalFlags) *cobra.Command {
	o := &infoOptions{}
	cmd := &cobra.Command{
		Use:   "info MODEL.gguf",
		Short: "Print a model's architecture, hyperparameters, tensor types and sizes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInfo(cmd.OutOrStdout(), args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.tensors, "tensors", false, "list every tensor (name, type, shape, bytes)")
	cmd.Flags().BoolVar(&o.metadata, "metadata", false, "list every metadata key and value")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object for machines")
	cmd.Flags().BoolVar(&o.check, "check", false, "dequantize every tensor and name those holding NaN or Inf (fails when any does)")
	return cmd
}

// infoReport is what `rwkv info --json` prints.
type infoReport struct {
	File         string             `json:"file"`
	FileBytes    int64              `json:"file_bytes"`
	GGUFVersion  uint32             `json:"gguf_version"`
	Architecture string             `json:"architecture"`
	Name         string             `json:"name,omitempty"`
	Config       *model.Config      `json:"config,omitempty"`
	ConfigError  string             `json:"config_error,omitempty"`
	Params       uint64             `json:"params"`
	TensorBytes  uint64             `json:"tensor_bytes"`
	StateBytes   int64              `json:"state_bytes_per_sequence,omitempty"`
	Types        []infoType         `json:"types"`
	Memory       map[string]int64   `json:"memory_estimate_bytes,omitempty"`
	Problems     []string           `json:"problems,omitempty"`
	NonFinite    []infoNonFinite    `json:"non_finite,omitempty"`
	Unchecked    []string           `json:"unchecked,omitempty"`
	Tensors      []infoTensor       `json:"tensors,omitempty"`
	Metadata     map[string]infoKey `json:"metadata,omitempty"`
}

type infoType struct {
	Type     string `json:"type"`
	Tensors  int    `json:"tensors"`
	Elements uint64 `json:"elements"`
	Bytes    uint64 `json:"bytes"`
}

type infoTensor struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	Shape []uint64 `json:"shape"`
	Bytes uint64   `json:"bytes"`
}

type infoKey struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func buildInfo(f *gguf.File, o *infoOptions) (*infoReport, error) {
	r := &infoReport{File: f.Path, FileBytes: f.Size, GGUFVersion: f.Version, Params: model.ParamCount(f)}
	r.Architecture, _ = f.String(model.KeyArchitecture)
	r.Name, _ = f.String(model.KeyName)
	for _, tc := range model.TypeHistogram(f) {
		r.Types = append(r.Types, infoType{Type: tc.Type.String(), Tensors: tc.Tensors, Elements: tc.Elements, Bytes: tc.Bytes})
		r.TensorBytes += tc.Bytes
	}
	c, err := model.ConfigFromGGUF(f)
	var validationErr error
	if err != nil {
		r.ConfigError = err.Error()
		validationErr = err
	} else {
		r.Config = &c
		r.StateBytes = c.StateBytes()
		r.Memory = map[string]int64{"cpu": model.EstimateCPUMemory(f, c, 1).Total()}
		if w, err := model.Load(f); err == nil {
			// The GPU engine's own plan, for one sequence on a device with
			// the binding limits of a typical discrete GPU.
			if p, err := engine.PlanMemory(w, engine.TypicalLimits, engine.Options{StateSlots: 1}); err == nil {
				r.Memory["gpu"] = int64(p.Total())
			}
		}
		if err := model.Validate(f, c); err != nil {
			validationErr = err
			var nw *model.NoWeightsError
			if ve, ok := err.(*model.ValidationError); ok {
				r.Problems = ve.Problems
			} else if errors.As(err, &nw) {
				r.Problems = []string{nw.Reason()}
			} else {
				r.Problems = []string{err.Error()}
			}
		}
	}
	if o.tensors {
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			r.Tensors = append(r.Tensors, infoTensor{Name: ti.Name, Type: ti.Type.String(), Shape: ti.Dims, Bytes: ti.Size})
		}
	}
	if o.metadata {
		r.Metadata = map[string]infoKey{}
		for _, kv := range f.KVs {
			r.Metadata[kv.Key] = infoKey{Type: kv.Value.Type().String(), Value: kv.Value.String()}
		}
	}
	return r, validationErr
}

func runInfo(w io.Writer, path string, o *infoOptions) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, validationErr := buildInfo(f, o)
	if o.check {
		if r.NonFinite, r.Unchecked, err = checkTensors(f); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printInfo(w, f, r, o)
		if o.check {
			printCheck(w, r.NonFinite, r.Unchecked, len(f.Tensors))
		}
	}
	if validationErr != nil {
		return fmt.Errorf("%s is not a usable rwkv7 model: %w", path, validationErr)
	}
	return checkError(path, r.NonFinite)
}

func printInfo(w io.Writer, f *gguf.File, r *infoReport, o *infoOptions) {
	fmt.Fprintf(w, "file          %s (%s, GGUF v%d)\n", r.File, humanBytes(r.FileBytes), r.GGUFVersion)
	fmt.Fprintf(w, "architecture  %s\n", r.Architecture)
	if r.Name != "" {
		fmt.Fprintf(w, "name          %s\n", r.Name)
	}
	if c := r.Config; c != nil {
		fmt.Fprintf(w, "layers        %d\n", c.Layers)
		fmt.Fprintf(w, "embedding     %d (%d heads of %d)\n", c.Dim, c.Heads, c.HeadSize)
		fmt.Fprintf(w, "ffn           %d\n", c.FFN)
		fmt.Fprintf(w, "lora ranks    decay %d, iclr %d, value %d, gate %d\n", c.RankW, c.RankA, c.RankV, c.RankG)
		fmt.Fprintf(w, "vocabulary    %d\n", c.Vocab)
		fmt.Fprintf(w, "epsilon       %g\n", c.Eps)
		fmt.Fprintf(w, "state         %s per sequence\n", humanBytes(r.StateBytes))
		if g, ok := r.Memory["gpu"]; ok {
			fmt.Fprintf(w, "memory        cpu %s, gpu %s (estimate, 1 sequence)\n", humanBytes(r.Memory["cpu"]), humanBytes(g))
		} else {
			fmt.Fprintf(w, "memory        cpu %s (estimate, 1 sequence)\n", humanBytes(r.Memory["cpu"]))
		}
	} else {
		fmt.Fprintf(w, "config        %s\n", r.ConfigError)
	}
	fmt.Fprintf(w, "parameters    %d (%.2fM)\n", r.Params, float64(r.Params)/1e6)
	fmt.Fprintf(w, "tensors       %d, %s of data\n", len(f.Tensors), humanBytes(int64(r.TensorBytes)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\ttype\ttensors\tparams\tbytes")
	for _, t := range r.Types {
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%s\n", t.Type, t.Tensors, t.Elements, humanBytes(int64(t.Bytes)))
	}
	tw.Flush()
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "problems      %d\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	if o.tensors {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "name\ttype\tshape\tbytes")
		for _, t := range r.Tensors {
			ti, _ := f.Tensor(t.Name)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", t.Name, t.Type, ti.ShapeString(), t.Bytes)
		}
		tw.Flush()
	}
	if o.metadata {
		for _, kv := range f.KVs {
			fmt.Fprintf(w, "%s\t%s\t%s\n", kv.Key, kv.Value.Type(), kv.Value.String())
		}
	}
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
