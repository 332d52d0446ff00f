package main

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/rwkv"
)

// loadSessionState reads the state file at path, refusing one saved for
// another model (the error names both), and puts its state into s. It
// returns the file's generation context (an empty one when it has none).
func loadSessionState(m *rwkv.Model, s model.Session, path string) (*generate.GenContext, error) {
	sf, err := generate.LoadStateFile(path, m.ID)
	if err != nil {
		return nil, err
	}
	if err := s.SetState(sf.State); err != nil {
		return nil, fmt.Errorf("loading the state of %s: %w", path, err)
	}
	if sf.Context == nil {
		return &generate.GenContext{}, nil
	}
	return sf.Context, nil
}

// saveSessionState writes the state of s with its generation context to
// path, atomically: the tokens it has consumed and their text.
func saveSessionState(m *rwkv.Model, s model.Session, path string, tokens uint64, transcript string) error {
	st, err := s.State()
	if err != nil {
		return fmt.Errorf("reading the state for %s: %w", path, err)
	}
	ctx := &generate.GenContext{Tokens: tokens, TranscriptLen: uint64(len(transcript)), Transcript: transcript}
	return generate.SaveStateFile(path, &generate.StateFile{Model: m.ID, State: st, Context: ctx})
}
