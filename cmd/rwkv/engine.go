package main

import (
	"io"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/rwkv"
)

// engineOptions are what a command asks of the engine it opens.
type engineOptions struct {
	device string // cpu, gpu or auto
	seqs   int    // state slots (sessions at once); 0 = the engine's default
	chunk  int    // tokens per GPU pass; 0 = the engine's default
	// splitUps computes the LoRA up projections as their own stage (GPU
	// tuning; see engine.Options.SplitLoRAUps).
	splitUps bool
	// progress receives the bytes of weights loaded and the total.
	progress func(done, total uint64)
}

// rwkvOptions turns a command's choices and the global flags into the
// library's options.
func rwkvOptions(o engineOptions, g *globalFlags, stderr io.Writer) rwkv.Options {
	opt := rwkv.Options{Device: o.device, Warn: stderr, Progress: o.progress,
		Engine: engine.Options{MaxTokens: o.chunk, StateSlots: o.seqs, SplitLoRAUps: o.splitUps}}
	if g.adapter != gpu.AutoAdapter {
		a := g.adapter
		opt.Adapter = &a
	}
	if g.verbose {
		opt.Log = stderr
	}
	return opt
}

// openRWKV opens a model file on the device o names.
func openRWKV(path string, o engineOptions, g *globalFlags, stderr io.Writer) (*rwkv.Model, error) {
	if path == "" {
		return nil, errNoModel
	}
	return rwkv.Open(path, rwkvOptions(o, g, stderr))
}

// loadOn runs an already open model (whose file stays the caller's) on the
// device o names.
func loadOn(lm *loadedModel, o engineOptions, g *globalFlags, stderr io.Writer) (*rwkv.Model, error) {
	return rwkv.Load(lm.file, rwkvOptions(o, g, stderr))
}
