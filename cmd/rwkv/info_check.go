package main

import (
	"fmt"
	"io"
	"math"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// infoNonFinite is one tensor that `rwkv info --check` found NaN or Inf in.
type infoNonFinite struct {
	Tensor   string `json:"tensor"`
	Type     string `json:"type"`
	Count    uint64 `json:"count"`
	Elements uint64 `json:"elements"`
	First    uint64 `json:"first_index"`
	Row      uint64 `json:"first_row"`
	Column   uint64 `json:"first_column"`
	Value    string `json:"first_value"`
}

// checkTensors dequantizes every tensor (block by block, bounded memory)
// and returns those holding NaN or ±Inf, and how many tensors of an
// unsupported type could not be checked.
func checkTensors(f *gguf.File) (bad []infoNonFinite, unchecked []string, err error) {
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if !ti.Type.Supported() {
			unchecked = append(unchecked, fmt.Sprintf("%s (%s)", ti.Name, ti.Type))
			continue
		}
		r, err := f.ScanNonFinite(ti)
		if err != nil {
			return nil, nil, err
		}
		if r.Count == 0 {
			continue
		}
		ne0 := max(ti.Ne(0), 1)
		bad = append(bad, infoNonFinite{
			Tensor: ti.Name, Type: ti.Type.String(), Count: r.Count, Elements: r.Elements,
			First: r.First, Row: r.First / ne0, Column: r.First % ne0, Value: formatNonFinite(r.FirstValue),
		})
	}
	return bad, unchecked, nil
}

func formatNonFinite(x float32) string {
	switch {
	case math.IsInf(float64(x), 1):
		return "+Inf"
	case math.IsInf(float64(x), -1):
		return "-Inf"
	}
	return "NaN"
}

// printCheck writes the --check findings, one line per tensor.
func printCheck(w io.Writer, bad []infoNonFinite, unchecked []string, tensors int) {
	if len(bad) == 0 {
		fmt.Fprintf(w, "check         %d tensors scanned, no NaN or Inf\n", tensors-len(unchecked))
	} else {
		fmt.Fprintf(w, "check         %d of %d tensors hold NaN or Inf\n", len(bad), tensors)
		for _, b := range bad {
			fmt.Fprintf(w, "  %s (%s): %d of %d values non-finite, first at index %d (row %d, column %d): %s\n",
				b.Tensor, b.Type, b.Count, b.Elements, b.First, b.Row, b.Column, b.Value)
		}
	}
	for _, u := range unchecked {
		fmt.Fprintf(w, "  not checked (unsupported type): %s\n", u)
	}
}

// checkError is the error `rwkv info --check` returns for non-finite
// tensors.
func checkError(path string, bad []infoNonFinite) error {
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d tensors hold NaN or Inf values, the first %s (%d values); every engine gives non-finite logits with it", path, len(bad), bad[0].Tensor, bad[0].Count)
}
