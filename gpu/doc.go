// Package gpu owns the WebGPU device and runs the RWKV-7 forward pass on it.
// It is the only package that imports the WebGPU binding.
package gpu
