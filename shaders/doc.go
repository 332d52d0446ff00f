// Package shaders holds the WGSL compute kernels and the text specialisation
// step that turns them into compilable sources.
//
// Every kernel family is one embedded .wgsl file. Source specialises a file:
//
//  1. each line `#include "common.wgsl"` is replaced by that file's text
//     (recursively; a file is included at most once, cycles are errors);
//  2. each placeholder {{NAME}} (NAME = [A-Z][A-Z0-9_]*) in code is replaced
//     by defines[NAME]. Placeholders inside // comments are left alone.
//
// Specialisation is strict so that typos fail loudly: a placeholder without a
// define, a define that the text never uses, a malformed "{{" and an unknown
// file are all errors.
//
// Each kernel file documents its placeholders, with values that compile, on a
// line of the form
//
//	//! defines: WG=256 HEAD=64
//
// which Defaults parses. Files without that line are include-only fragments
// (Fragments lists them; common.wgsl is one); Names lists the kernel files. The conventions shared by all kernels (bindings,
// parameter blocks, f16 and quantized data as u32 words, workgroup size) are
// written at the top of common.wgsl.
//
// It imports nothing of this project.
package shaders
