// Package shaders holds the WGSL compute kernels and the text specialisation
// step that turns them into compilable sources.
//
// It imports nothing of this project.
package shaders
