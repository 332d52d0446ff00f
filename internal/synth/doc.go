// Package synth writes synthetic RWKV-7 GGUF models: the shapes of the
// published models (0.1b to 13.3b) or a tiny test shape, with the real World
// vocabulary, the metadata and per-tensor storage types of a llama.cpp
// conversion or quantization, and random weights shaped and scaled like a
// real RWKV-7 model so that every code path of the forward pass produces
// finite, non-degenerate numbers over hundreds of tokens.
//
// Files are deterministic in (preset, type, seed): every tensor row draws
// from its own pseudo-random stream seeded by the seed, the tensor name and
// the row index, so rows are generated in parallel and in any order, and
// tensor data is streamed to disk with bounded memory.
package synth
