// Package cpuref is the readable pure-Go RWKV-7 forward pass: the oracle that
// every GPU kernel is tested against.
package cpuref
