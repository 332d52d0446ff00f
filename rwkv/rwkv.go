// Package rwkv is the entry point for programs that embed the engine: one
// call opens an rwkv7 GGUF file on the best device (a WebGPU adapter, or
// the CPU reference with a warning when there is none) and returns its
// engine and tokenizer; Close releases the device and the file.
//
// The engine it returns (Model.Engine) implements model.Engine: sessions
// hold a sequence's state (on the GPU, in device memory), and one Step
// advances any set of sessions at once, each by its own tokens, returning
// logits or a token chosen on the device. See the package example.
package rwkv

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// Device names accepted by Options.Device.
const (
	Auto = "auto" // the best GPU adapter, else the CPU reference (with a warning)
	GPU  = "gpu"  // a GPU adapter, or an error
	CPU  = "cpu"  // the pure-Go CPU reference
)

// Options say where and how Open runs a model. The zero value picks the
// best device with the engine's defaults.
type Options struct {
	// Device is Auto (""), GPU or CPU.
	Device string
	// Adapter picks a GPU adapter by its index in gpu.Adapters(); nil means
	// the best one, or the one the environment variable RWKV_GPU names.
	Adapter *int
	// Engine tunes the GPU engine (pass size, state slots, ...).
	Engine engine.Options
	// Warn receives the CPU-fallback warning; nil means os.Stderr.
	Warn io.Writer
	// Log receives device and upload details; nil is quiet.
	Log io.Writer
	// Progress, when set, is called while the model loads with the bytes
	// done and the total (reading and uploading the weights).
	Progress func(done, total uint64)
}

// Model is an open model: its engine and tokenizer. On the GPU the file is
// closed once the weights are uploaded; the CPU engine reads the mapped
// file for its whole life. Close releases whichever the model holds.
type Model struct {
	// Engine runs the model (see model.Engine).
	Engine model.Engine
	// Tokenizer turns text into token ids and back.
	Tokenizer *tokenizer.Tokenizer
	// Config holds the model's hyperparameters.
	Config model.Config
	// Path is the file the model came from.
	Path string
	// Name is the model's general.name, or "" when the file has none.
	Name string
	// ID identifies the model (a hash of its metadata and tensor table),
	// for state files.
	ID generate.ModelID
	// FellBack is true when Auto found no GPU adapter and chose the CPU.
	FellBack bool

	file *gguf.File
	dev  *gpu.Device
}

// Open opens path and loads its model on the device opt asks for.
func Open(path string, opt Options) (*Model, error) {
	if path == "" {
		return nil, errors.New("rwkv: no model file given")
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := open(f, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := m.releaseFile(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Load runs the model of an already open file, which stays the caller's:
// Close releases the engine and the device but leaves the file open (the
// CPU engine reads it until then).
func Load(f *gguf.File, opt Options) (*Model, error) {
	m, err := open(f, opt)
	if err != nil {
		return nil, err
	}
	m.file = nil
	return m, nil
}

func open(f *gguf.File, opt Options) (*Model, error) {
	w, err := model.Load(f)
	if err != nil {
		return nil, err
	}
	tok, err := model.LoadTokenizer(f)
	if err != nil {
		return nil, err
	}
	name, _ := f.String("general.name")
	id, err := generate.IdentifyModel(w)
	if err != nil {
		return nil, err
	}
	m := &Model{Tokenizer: tok, Config: w.Config, Path: f.Path, Name: name, ID: id, file: f}
	switch opt.Device {
	case CPU:
		m.Engine = cpuref.New(w)
		return m, nil
	case GPU, Auto, "":
	default:
		return nil, fmt.Errorf("rwkv: unknown device %q: expected %s, %s or %s", opt.Device, Auto, GPU, CPU)
	}
	adapter := gpu.AutoAdapter
	if opt.Adapter != nil {
		adapter = *opt.Adapter
	}
	dev, err := gpu.Open(gpu.Options{Adapter: adapter, Log: opt.Log})
	if err != nil {
		if opt.Device != GPU && errors.Is(err, gpu.ErrNoAdapter) {
			warn := opt.Warn
			if warn == nil {
				warn = os.Stderr
			}
			fmt.Fprintf(warn, "rwkv: warning: no GPU adapter (%v); running on the CPU reference, which is much slower\n", err)
			m.Engine, m.FellBack = cpuref.New(w), true
			return m, nil
		}
		return nil, err
	}
	e, err := openGPU(dev, w, opt)
	if err != nil {
		dev.Close()
		return nil, err
	}
	m.Engine, m.dev = e, dev
	return m, nil
}

// releaseFile closes the file when the engine no longer needs it: the GPU
// engine needs it only for the upload.
func (m *Model) releaseFile() error {
	if _, onGPU := m.Engine.(*engine.Engine); !onGPU || m.file == nil {
		return nil
	}
	f := m.file
	m.file = nil
	return f.Close()
}

// openGPU checks that the engine's allocation plan fits the device, then
// builds the engine.
func openGPU(dev *gpu.Device, w *model.Weights, opt Options) (*engine.Engine, error) {
	eo := opt.Engine
	if eo.Log == nil {
		eo.Log = opt.Log
	}
	if eo.Progress == nil {
		eo.Progress = opt.Progress
	}
	plan, err := engine.PlanMemory(w, dev.Limits(), eo)
	if err != nil {
		return nil, err
	}
	if err := dev.CheckFits(plan.Total(), w.File.Path); err != nil {
		return nil, err
	}
	return engine.New(dev, w, eo)
}

// Close releases the engine, the device and the file.
func (m *Model) Close() error {
	var errs []error
	if m.Engine != nil {
		errs = append(errs, m.Engine.Close())
	}
	if m.dev != nil {
		m.dev.Close()
	}
	if m.file != nil {
		errs = append(errs, m.file.Close())
	}
	return errors.Join(errs...)
}

// Device describes where the model runs.
func (m *Model) Device() string { return m.Engine.Device() }
