package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// engineOptions are what a command asks of the engine it opens.
type engineOptions struct {
	device   string // cpu, gpu or auto
	seqs     int    // sequences at once (GPU state slots)
	chunk    int    // prefill tokens per GPU step
	fallback bool   // auto: fall back to the CPU when there is no adapter
	// splitUps computes the LoRA up projections as their own stage (GPU
	// tuning; see gpu.EngineOptions.SplitLoRAUps).
	splitUps bool
}

// gpuEngine owns the device its engine runs on.
type gpuEngine struct {
	*gpu.Engine
	dev *gpu.Device
}

func (g *gpuEngine) Close() error {
	err := g.Engine.Close()
	g.dev.Close()
	return err
}

// openEngine returns the engine for a device name: "cpu" is the pure-Go
// reference, "gpu" the WebGPU engine, "auto" the GPU when an adapter exists
// and the CPU (with a visible warning) otherwise.
func openEngine(lm *loadedModel, o engineOptions, g *globalFlags, stderr io.Writer) (model.Engine, error) {
	switch o.device {
	case "cpu":
		return cpuref.New(lm.weights), nil
	case "gpu", "auto":
		e, err := openGPU(lm, o, g, stderr)
		if err != nil && o.device == "auto" && errors.Is(err, gpu.ErrNoAdapter) {
			fmt.Fprintf(stderr, "rwkv: warning: no GPU adapter (%v); running on the CPU reference, which is much slower\n", err)
			return cpuref.New(lm.weights), nil
		}
		return e, err
	default:
		return nil, fmt.Errorf("unknown device %q: expected cpu, gpu or auto", o.device)
	}
}

func openGPU(lm *loadedModel, o engineOptions, g *globalFlags, stderr io.Writer) (*gpuEngine, error) {
	var log io.Writer
	if g.verbose {
		log = stderr
	}
	dev, err := gpu.Open(gpu.Options{Adapter: g.adapter, Log: log})
	if err != nil {
		return nil, err
	}
	c := lm.weights.Config
	need := model.EstimateMemory(lm.file, c, model.DeviceGPU, max(o.seqs, 1), max(o.chunk, 64)).Total()
	if err := dev.CheckFits(uint64(need), lm.file.Path); err != nil {
		dev.Close()
		return nil, err
	}
	e, err := gpu.NewEngine(dev, lm.weights, gpu.EngineOptions{MaxTokens: o.chunk, MaxSequences: o.seqs, SplitLoRAUps: o.splitUps, Log: log})
	if err != nil {
		dev.Close()
		return nil, err
	}
	return &gpuEngine{Engine: e, dev: dev}, nil
}
