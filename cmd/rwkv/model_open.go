package main

import (
	"errors"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// loadedModel is an open GGUF file with its validated weights, for commands
// that look at the weights themselves (bench, verify).
type loadedModel struct {
	file    *gguf.File
	weights *model.Weights
}

var errNoModel = errors.New("no model given: pass -m MODEL.gguf")

// openModel opens and validates an rwkv7 GGUF file.
func openModel(path string) (*loadedModel, error) {
	if path == "" {
		return nil, errNoModel
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	w, err := model.Load(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &loadedModel{file: f, weights: w}, nil
}

func (m *loadedModel) Close() error { return m.file.Close() }
