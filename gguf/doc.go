// Package gguf reads and writes GGUF v2/v3 files (the container llama.cpp
// uses) and dequantizes every block format an rwkv7 file may hold.
//
// It imports nothing of this project.
package gguf
