package main

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// openEngine returns the engine for a device name: "cpu" is the pure-Go
// reference.
func openEngine(lm *loadedModel, device string, g *globalFlags) (model.Engine, error) {
	switch device {
	case "cpu":
		return cpuref.New(lm.weights), nil
	default:
		return nil, fmt.Errorf("unknown device %q: expected cpu", device)
	}
}
