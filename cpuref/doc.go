// Package cpuref is the readable pure-Go RWKV-7 forward pass: the oracle that
// every GPU kernel is tested against. sample.go is likewise the reference of
// BlinkDL's sampler (model.Sampling) for the GPU's gpu.Sampler.
package cpuref
