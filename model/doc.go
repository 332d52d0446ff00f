// Package model knows RWKV-7: its hyperparameters from GGUF metadata, the
// name and shape of every tensor, the recurrent state, and the Engine
// interface through which the CPU and GPU forward passes are used.
package model
