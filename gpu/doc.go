// Package gpu owns the WebGPU device and runs the RWKV-7 forward pass on it.
// It is the only package that imports the WebGPU binding
// (github.com/cogentcore/webgpu, which wraps wgpu-native).
//
// # Adding a kernel
//
// Write shaders/<family>.wgsl following the conventions at the top of
// shaders/common.wgsl (a "//! defines: WG=256 ..." line, #include
// "common.wgsl", const WG: u32 = {{WG}}u; a shape comment per binding),
// specialise it with shaders.Source, compile it with Device.Kernel, and
// record dispatches:
//
//	src, err := shaders.Source("family.wgsl", map[string]string{"WG": "256"}) // shaders.Defaults: documented values
//	k, err := dev.Kernel("family.entry", src, "entry")   // cached by (source hash, entry): cheap to repeat
//	p, err := dev.Params(uint32(n), math.Float32bits(eps)) // uniform block, shared by content
//	x, y, z := dev.Grid(uint32(n), 256)                    // folds > 65535 workgroups into y
//	rec := dev.NewRecorder()
//	rec.Dispatch(k, []gpu.Binding{{Buf: in}, {Buf: out}, {Buf: p}}, x, y, z)
//	rec.Copy(out, 0, other, 0, 4*uint64(n))
//	err = rec.Submit()              // one command encoder, one submit; does not wait
//	v, err := dev.ReadF32(out, 0, n) // waits for the GPU
//
// TestEveryShaderCompiles compiles every @compute entry of every kernel file
// with its documented defines, so a broken shader fails the gpu tests.
//
// # The RWKV-7 engine
//
// NewEngine uploads a model.Weights: matrices are repacked into word planes
// (formats.go, repack_*.go; the bytes of the file, regrouped) and packed into
// weight arenas no larger than the storage-binding limit (arena.go), with
// big matrices split by rows. A stage (a set of matrix products that can
// run together) becomes one dispatch per arena of the grouped matvec
// (decode) or tiled matmul (prefill) kernel, specialised for the formats it
// reads. forward.go records a step: the embedding, 7 dispatches per layer,
// ln_out, the head and the argmax, into one command buffer. A weight format
// is one dq8_<fmt> function in shaders/formats.wgsl plus a repacker and a
// row of the format table; the kernels need no change.
//
// # Sampling
//
// Sampler (sampler.go, shaders/sample.wgsl) is BlinkDL's RWKV-7 sampler
// (model.Sampling: penalties with decay, top-k, the demo's top-p with its
// adjustment, temperature, an inverse-CDF draw keyed by Philox4x32-10) for
// every row of a step, one workgroup per row. Each slot's parameters and
// state (decayed counts, seen tokens, penalties, RNG counter) stay on the
// device, so a chain of recorded steps needs no host write. Cutoffs are found
// without sorting, by a search over the bit patterns of the probabilities.
// It draws the tokens cpuref.SamplerState draws, except where a draw falls
// within float32 rounding of a boundary of the cumulative distribution.
//
// # Conventions
//
//   - Bind group 0 only. Binding i of the WGSL is element i of the []Binding
//     passed to Dispatch; an entry point that does not use binding i gets
//     gpu.Binding{} there (the layout is derived from each entry point, so
//     only the bindings it uses exist). Order: inputs, outputs, then the
//     uniform parameter block last.
//   - Binding{Buf, Offset, Size}: Size 0 means "to the end of the buffer".
//     Offsets must be multiples of Limits().MinStorageBufferOffsetAlignment
//     (256 on many GPUs, 32 on lavapipe). One storage binding covers at most
//     MaxBindingSize() bytes (128 MiB on lavapipe): split larger tensors.
//   - Parameters: a WGSL struct of 4-byte scalars. Constant ones come from
//     dev.Params(words...) (read-only, cached by content, so repeated token
//     steps reuse the same bind groups); values that change per step go in
//     a buffer from dev.Uniform and are rewritten with dev.Write. A Write is
//     ordered before the next Submit, so within one recording a uniform
//     buffer has one value.
//   - f16 is not enabled in WGSL (wgpu-native rejects `enable f16;`): f16 and
//     bf16 tensors are uploaded as raw bytes into array<u32> bindings, two
//     values per word (element 2k in the low half), and read with f16_lo /
//     f16_hi / f16_pick / bf16_lo / bf16_hi from common.wgsl. Quantized
//     blocks are likewise array<u32>, decoded with byte_at / sbyte_at /
//     nibble_at / u16_at_byte at byte offsets. Float data is little-endian.
//   - No subgroup operations and no pipeline-override constants are
//     available: reductions use workgroup memory (wg_reduce_sum/max), and
//     sizes are specialised into the text with {{PLACEHOLDERS}}.
//
// # Errors
//
// WebGPU validation errors come back as *gpu.Error values naming the
// operation, the kernel, its workgroups and its buffers (with labels):
// compile errors from Kernel (with the WGSL diagnostics), bind-group
// errors from Dispatch (sticky on the Recorder), and pass errors (usage
// conflicts and the like) from Submit, which re-encodes the operations one
// by one to say which dispatch failed. Nothing invalid is ever submitted:
// wgpu-native aborts the process on a failed queue submit. Out-of-memory
// errors on buffer creation and writes are caught by an extra error scope.
//
// # Environment
//
//	RWKV_GPU          adapter for Open with AutoAdapter: an index into Adapters() or a name substring
//	RWKV_WGPU_LOG     wgpu-native's own log level on stderr (error|warn|info|debug|trace; default off)
//	RWKV_REQUIRE_GPU  =1 (or CI set): tests fail instead of skipping when no adapter exists
//	RWKV_VULKAN_LIB   Vulkan loader for gpu/vkinfo (default libvulkan.so.1)
//
// # Device facts worth knowing
//
// On lavapipe (Mesa's CPU Vulkan driver, used by CI) the adapter is
// "llvmpipe (LLVM ..., 256 bits)", type cpu, with a 128 MiB storage binding
// limit, 2 GiB buffers, 32 KiB workgroup storage, 1024 invocations per
// workgroup, 32 storage buffers per stage, and timestamp queries. Two bugs
// of the binding (cogentcore/webgpu v0.23.0) are worked around here: it
// leaves instance flags uninitialised (instance.go) and reads the
// push-constant limit from uninitialised memory, so passing the adapter's
// whole limits to RequestDevice fails (requiredLimits).
package gpu
