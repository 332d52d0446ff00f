package engine

// Parameter blocks of the kernels, field by field as the WGSL structs they
// feed (TestParamBlocksMatchWGSL checks names, types and offsets against
// the shader text). Offsets into act, vec, state and ids count 4-byte
// elements; W offsets count words.

// lnParams is LnParams of lnmix.wgsl.
type lnParams struct {
	D          uint32  // vector length D
	Eps        float32 // layer norm epsilon
	NMix       uint32  // mixed outputs per token (0, 1 or 6)
	XOff       uint32  // act offset of x[0]; tokens are D apart
	XaOff      uint32  // act offset of xa[0]
	MixOff     uint32  // act offset of mix[0][0]
	MixStride  uint32  // floats between mix[m] and mix[m+1]
	LnW        uint32  // vec offset of the norm weight [D]
	LnB        uint32  // vec offset of the norm bias [D]
	Mu         uint32  // vec offset of the mix rows [n_mix][D]
	ShiftOff   uint32  // offset of the layer's shift vector inside a slot
	SlotStride uint32  // floats per slot in state
}

// embedParams is EmbedParams of tokens.wgsl.
type embedParams struct {
	D     uint32  // embedding width
	Eps   float32 // ln0 epsilon
	Fmt   uint32  // embedding format (ggml type id)
	Q, S  uint32  // plane offsets in W
	RowLo uint32  // rows [RowLo, RowHi) live in this arena
	RowHi uint32
	XOff  uint32 // act offset of x[0]
	LnW   uint32 // vec offsets of ln0
	LnB   uint32
}

// argmaxParams is ArgmaxParams of tokens.wgsl.
type argmaxParams struct {
	V      uint32 // vocabulary (row length)
	Logits uint32 // act offset of logits row 0
	Out    uint32 // ids offset of the per-row (id, non-finite count) pairs
	Chosen uint32 // ids offset of the per-slot chosen tokens
}

// upParams is Up of wkv.wgsl: one LoRA up projection's planes.
type upParams struct {
	Fmt  uint32 // ggml type id (0 when unused)
	K    uint32 // rank (columns)
	Q, S uint32 // plane offsets in W
}

// wkvParams is WkvParams of wkv.wgsl.
type wkvParams struct {
	D          uint32
	Layer0     uint32 // 1 in layer 0 (records v_first), else 0
	SlotStride uint32 // floats per slot in state
	WkvOff     uint32 // WKV matrices offset inside a slot
	HidStride  uint32 // floats between tokens in the LoRA hidden rows
	Hw         uint32 // act offsets of token 0's LoRA hidden vectors
	Ha         uint32
	Hv         uint32
	Hg         uint32
	R          uint32 // act offsets of token 0's r, k, v
	K          uint32
	V          uint32
	Vfirst     uint32 // act offset of token 0's v_first
	O          uint32 // act offset of token 0's output
	W0         uint32 // vec offsets [D] each
	A0         uint32
	V0         uint32
	Kk         uint32
	Ka         uint32
	Rk         uint32
	LnxW       uint32
	LnxB       uint32
	Ups        uint32 // act offset of the precomputed up projections
	UpsStride  uint32 // floats between them
	W2         upParams
	A2         upParams
	V2         upParams
	G2         upParams
}

// jobParams is Job of jobs.wgsl: one matrix (part) of a weight stage.
type jobParams struct {
	Fmt     uint32 // ggml type id of the weights
	Rows    uint32 // rows of this job
	K       uint32 // columns
	Q, S    uint32 // plane offsets in W
	XOff    uint32 // act offset of token 0's input
	XStride uint32 // floats between tokens' inputs
	YOff    uint32 // act offset of token 0's output row 0
	YStride uint32 // floats between tokens' outputs
	Epi     uint32 // epilogue
	WgStart uint32 // first workgroup of this job
	Pad     uint32
}

// matvecParams is MatvecParams of jobs.wgsl: a stage dispatch's job table
// and the tokens (rows of x) it multiplies.
type matvecParams struct {
	NJobs  uint32
	T      uint32
	P1, P2 uint32
	Jobs   [maxJobs]jobParams
}

// slotCopyParams is SlotCopyParams of slots.wgsl.
type slotCopyParams struct {
	N      uint32 // floats per slot
	Src    uint32 // source slot
	Dst    uint32 // destination slot
	Chosen uint32 // ids offset of the per-slot chosen tokens
}
