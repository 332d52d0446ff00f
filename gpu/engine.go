package gpu

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// EngineOptions tune how a model is laid out on the device.
type EngineOptions struct {
	// MaxTokens is the most tokens one internal step processes (a longer
	// prefill is split into steps of this size); it sizes the activation
	// buffers. 0 means 64.
	MaxTokens int
	// MaxSequences is the number of state slots: sessions that can exist at
	// once, and the widest batched decode. 0 means 1; at most 64.
	MaxSequences int
	// ArenaBytes caps each weight buffer below the device's storage-binding
	// limit (0 = the limit). Tests use it to force split tensors. The LoRA up
	// projections of a layer always share one buffer of at most the limit.
	ArenaBytes uint64
	// MatvecLanes fixes how many invocations share one row in the decode
	// matrix-vector kernel (a power of two from 4 to 256; 0 = chosen per
	// stage and device). For tuning and tests.
	MatvecLanes int
	// WorkgroupMemory caps the workgroup memory the prefill kernel may use
	// (0 = the device's limit); below 16.5 KiB it uses 32-token tiles.
	// For tests and small devices.
	WorkgroupMemory uint32
	// SplitLoRAUps computes the four LoRA up projections (decay, iclr, value
	// residual, gate) as their own grouped product before the WKV kernel
	// (one more dispatch per layer, every matrix row read by a coalesced
	// team) instead of inside it (one invocation per channel reading its
	// row) also when decoding. Steps of more than splitUpsAbove tokens
	// always split, since the fused kernel would compute them token after
	// token. Which is faster for decode depends on the GPU; measure with
	// rwkv bench --split-lora-ups.
	SplitLoRAUps bool
	// Log receives load progress and layout facts; nil is quiet.
	Log io.Writer
}

// Engine is the RWKV-7 forward pass on a WebGPU device, implementing
// model.Engine. Weights stay in their stored format on the device; the
// state and all activations stay there too.
type Engine struct {
	dev *Device
	w   *model.Weights
	cfg model.Config
	opt EngineOptions

	lay actLayout

	act    *Buffer // activations and logits, f32
	state  *Buffer // [slots][state floats] f32
	ids    *Buffer // token ids and generation history, u32
	tok    *Buffer // per-token metadata [MaxTokens][2] u32
	step   *Buffer // uniform StepParams for the layer kernels
	hstep  *Buffer // uniform StepParams for the head (rows, row0)
	seqU   *Buffer // uniform SeqParams for wkv
	gvec   *Buffer // global f32 vectors: ln0 w, b; ln_out w, b
	layers []layerGPU
	embed  []embedPart
	head   stage
	lnOut  *Buffer // LnParams of ln_out
	// argmaxParams is the argmax's TokParams for the next recording.
	argmaxParams *Buffer

	k kernels

	mu     sync.Mutex
	slots  []bool
	closed bool
	// dispatchesPerToken and perLayer are measured when the engine is built.
	dispatchesPerToken int
	dispatchesPerLayer int
	weightBytes        uint64
}

type kernels struct {
	lnmix, lnRows, wkv, embed, argmax *Kernel
	// wkvPre is the WKV kernel reading precomputed LoRA up projections.
	wkvPre *Kernel
	// weights holds matvec and matmul per format set (weightKernels).
	weights map[string]weightKernels
}

// Kernel tile shapes (the placeholders of matvec.wgsl and matmul.wgsl).
const (
	mvMaxT = 8
	// splitUpsAbove: steps of more tokens compute the LoRA up projections as
	// a grouped product before the WKV kernel instead of inside it.
	splitUpsAbove = 8
	mmTR          = 64 // matmul rows per tile; the tokens per tile come from matmulShape
	maxJobs       = 8
	maxSeqs       = 64
	idsHistory    = 1 << 16
)

// actLayout holds the float offsets of the activation regions, each
// [MaxTokens][width] (mix is [6][MaxTokens][D]).
type actLayout struct {
	tmax                                int
	x, xa, mix, r, k, v, o, vfirst, ffh int
	hid, hidStride                      int
	ups                                 int // [4][tmax][D]: raw w, a, v, g up projections (split mode)
	hw, ha, hv, hg                      int
	logits                              int
	total                               int
	// ids buffer: [0, tmax) input ids, next ids at next, history count, history.
	idsNext, idsCount, idsHist, idsTotal int
}

func newActLayout(c model.Config, tmax int) actLayout {
	var l actLayout
	l.tmax = tmax
	off := 0
	region := func(width int) int {
		o := off
		off += tmax * width
		off = (off + 63) &^ 63
		return o
	}
	l.x = region(c.Dim)
	l.xa = region(c.Dim)
	l.mix = region(6 * c.Dim)
	l.r, l.k, l.v = region(c.Dim), region(c.Dim), region(c.Dim)
	l.o = region(c.Dim)
	l.vfirst = region(c.Dim)
	l.ffh = region(c.FFN)
	l.hidStride = c.RankW + c.RankA + max(c.RankV, c.RankA) + c.RankG
	l.hid = region(l.hidStride)
	l.hw, l.ha, l.hv, l.hg = l.hid, l.hid+c.RankW, l.hid+c.RankW+c.RankA, l.hid+c.RankW+c.RankA+max(c.RankV, c.RankA)
	l.ups = region(4 * c.Dim)
	l.logits = region(c.Vocab)
	l.total = off
	l.idsNext = tmax
	l.idsCount = tmax + maxSeqs
	l.idsHist = l.idsCount + 4
	l.idsTotal = l.idsHist + idsHistory
	return l
}

type layerGPU struct {
	vec          *Buffer
	lnAtt, lnFfn *Buffer // LnParams
	tm, wo, ffk  stage
	ffv          stage
	up           *arena
	ups          stage // the up projections as a weight stage (prefill, SplitLoRAUps)
	wkvParams    *Buffer
}

type embedPart struct {
	arena  *arena
	params *Buffer
}

// NewEngine uploads the model's weights to the device and prepares the
// kernels. The weights' GGUF file must stay open until NewEngine returns;
// afterwards the engine needs only the device.
func NewEngine(dev *Device, w *model.Weights, opt EngineOptions) (*Engine, error) {
	if opt.MaxTokens <= 0 {
		opt.MaxTokens = 64
	}
	if opt.MaxSequences <= 0 {
		opt.MaxSequences = 1
	}
	if opt.MaxSequences > maxSeqs {
		return nil, fmt.Errorf("gpu: at most %d sequences, asked for %d", maxSeqs, opt.MaxSequences)
	}
	limit := dev.MaxBindingSize() &^ 255
	if opt.ArenaBytes > 0 && opt.ArenaBytes < limit {
		limit = opt.ArenaBytes
	}
	c := w.Config
	if c.HeadSize > 256 || c.HeadSize&(c.HeadSize-1) != 0 {
		return nil, fmt.Errorf("gpu: head size %d is not supported (a power of two up to 256): %w", c.HeadSize, ErrUnsupportedOnGPU)
	}
	if n := opt.MatvecLanes; n != 0 && (n < 4 || n > 256 || n&(n-1) != 0) {
		return nil, fmt.Errorf("gpu: MatvecLanes %d is not a power of two from 4 to 256", n)
	}
	if c.Dim%32 != 0 {
		return nil, fmt.Errorf("gpu: embedding width %d is not a multiple of 32: %w", c.Dim, ErrUnsupportedOnGPU)
	}
	e := &Engine{dev: dev, w: w, cfg: c, opt: opt, slots: make([]bool, opt.MaxSequences)}
	e.lay = newActLayout(c, opt.MaxTokens)
	ok := false
	defer func() {
		if !ok {
			e.release()
		}
	}()
	all := append(w.Matrices(), &w.Embed)
	for _, m := range all {
		if _, err := formatOf(m); err != nil {
			return nil, err
		}
	}
	var upTypes []gguf.Type
	for l := range w.Layers {
		L := &w.Layers[l]
		upTypes = append(upTypes, L.W2.Type, L.A2.Type, L.G2.Type)
		if l > 0 {
			upTypes = append(upTypes, L.V2.Type)
		}
	}
	if err := e.compile(distinctTypes(upTypes), w.Embed.Type); err != nil {
		return nil, err
	}
	if err := e.allocate(); err != nil {
		return nil, err
	}
	if err := e.uploadGlobals(limit); err != nil {
		return nil, err
	}
	for l := range w.Layers {
		if err := e.uploadLayer(l, limit); err != nil {
			return nil, err
		}
		e.logf("layer %d/%d uploaded", l+1, c.Layers)
	}
	if err := e.setArgmax(uint32(e.lay.idsNext), false); err != nil {
		return nil, err
	}
	if err := e.measureDispatches(); err != nil {
		return nil, err
	}
	ok = true
	e.logf("weights on the GPU: %.1f MiB; activations %.1f MiB; state %.1f MiB for %d sequence(s); %d dispatches per token (%d per layer)",
		float64(e.weightBytes)/(1<<20), float64(e.lay.total*4)/(1<<20), float64(e.state.Size())/(1<<20), opt.MaxSequences,
		e.dispatchesPerToken, e.dispatchesPerLayer)
	return e, nil
}

func (e *Engine) logf(format string, args ...any) {
	if e.opt.Log != nil {
		fmt.Fprintf(e.opt.Log, "gpu: "+format+"\n", args...)
	}
}

// build specialises and compiles one kernel entry point.
func (e *Engine) build(file, entry string, defs map[string]string) (*Kernel, error) {
	src, err := shaders.Source(file, defs)
	if err != nil {
		return nil, err
	}
	return e.dev.Kernel(strings.TrimSuffix(file, ".wgsl")+":"+entry, src, entry)
}

// compile builds the kernels that do not depend on a stage's formats: the
// norms, the WKV kernel (for the formats of the LoRA up projections), the
// embedding (for the embedding's format) and the argmax.
func (e *Engine) compile(upTypes []gguf.Type, embedType gguf.Type) error {
	var err error
	k := &e.k
	if k.lnmix, err = e.build("lnmix.wgsl", "lnmix", map[string]string{"WG": "256"}); err != nil {
		return err
	}
	if k.lnRows, err = e.build("lnmix.wgsl", "ln_rows", map[string]string{"WG": "256"}); err != nil {
		return err
	}
	for _, pre := range []bool{false, true} {
		kw, err := e.build("wkv.wgsl", "wkv", map[string]string{"WG": fmt.Sprint(e.cfg.HeadSize), "DQ8_BODY": dq8Body(upTypes),
			"UPS_PRECOMPUTED": fmt.Sprint(pre)})
		if err != nil {
			return err
		}
		if pre {
			k.wkvPre = kw
		} else {
			k.wkv = kw
		}
	}
	tokDefs := map[string]string{"WG": "256", "DQ8_BODY": dq8Body([]gguf.Type{embedType})}
	if k.embed, err = e.build("tokens.wgsl", "embed", tokDefs); err != nil {
		return err
	}
	if k.argmax, err = e.build("tokens.wgsl", "argmax", tokDefs); err != nil {
		return err
	}
	return nil
}

// allocate creates the activation, state and per-call buffers.
func (e *Engine) allocate() error {
	var err error
	c, l := e.cfg, e.lay
	// Both are bound whole by the kernels.
	limit := e.dev.MaxBindingSize()
	if n := uint64(4 * l.total); n > limit {
		return fmt.Errorf("gpu: activations for %d tokens per step need %d MiB, above this device's storage binding limit of %d MiB: lower MaxTokens",
			l.tmax, n>>20, limit>>20)
	}
	if n := uint64(4 * c.StateFloats() * e.opt.MaxSequences); n > limit {
		return fmt.Errorf("gpu: the state of %d sequences needs %d MiB, above this device's storage binding limit of %d MiB: use fewer sequences (at most %d)",
			e.opt.MaxSequences, n>>20, limit>>20, limit/uint64(4*c.StateFloats()))
	}
	if e.act, err = e.dev.NewBuffer("activations", uint64(4*l.total)); err != nil {
		return err
	}
	if e.state, err = e.dev.NewBuffer("state", uint64(4*c.StateFloats()*e.opt.MaxSequences)); err != nil {
		return err
	}
	if e.ids, err = e.dev.NewBuffer("token ids", uint64(4*l.idsTotal)); err != nil {
		return err
	}
	if e.tok, err = e.dev.NewBuffer("token metadata", uint64(8*l.tmax)); err != nil {
		return err
	}
	if e.step, err = e.dev.NewBuffer("step params", 16, Uniform); err != nil {
		return err
	}
	if e.hstep, err = e.dev.NewBuffer("head step params", 16, Uniform); err != nil {
		return err
	}
	if e.seqU, err = e.dev.NewBuffer("sequence params", 16*maxSeqs, Uniform); err != nil {
		return err
	}
	return nil
}

// vecBuilder concatenates f32 vectors and remembers their offsets.
type vecBuilder struct{ data []float32 }

func (b *vecBuilder) add(v ...[]float32) uint32 {
	off := uint32(len(b.data))
	for _, x := range v {
		b.data = append(b.data, x...)
	}
	return off
}

func (e *Engine) uploadGlobals(limit uint64) error {
	c, w, l := e.cfg, e.w, e.lay
	var vb vecBuilder
	ln0w, ln0b := vb.add(w.Ln0W), vb.add(w.Ln0B)
	outw, outb := vb.add(w.LnOutW), vb.add(w.LnOutB)
	var err error
	if e.gvec, err = e.dev.NewBufferF32("global vectors", vb.data); err != nil {
		return err
	}
	// Embedding table: parts by rows, each its own dispatch.
	ep := newArenaPlanner("token_embd", limit)
	parts, err := ep.add(&w.Embed)
	if err != nil {
		return err
	}
	if err := ep.upload(e.dev); err != nil {
		return err
	}
	e.weightBytes += ep.totalBytes()
	for _, p := range parts {
		params, err := e.dev.Params(uint32(c.Dim), math.Float32bits(c.Eps), uint32(p.fmt.typ), p.q, p.s,
			uint32(p.rowLo), uint32(p.rowLo+p.rows), uint32(l.x), ln0w, ln0b, 0, uint32(c.Vocab), 0, 0, 0xffffffff, 0)
		if err != nil {
			return err
		}
		e.embed = append(e.embed, embedPart{arena: p.arena, params: params})
	}
	// ln_out and the head.
	if e.lnOut, err = e.dev.Params(e.lnParams(outw, outb, 0, 0, 0)...); err != nil {
		return err
	}
	hp := newArenaPlanner("output", limit)
	hparts, err := hp.add(&w.Head)
	if err != nil {
		return err
	}
	if err := hp.upload(e.dev); err != nil {
		return err
	}
	e.weightBytes += hp.totalBytes()
	var jobs []job
	for _, p := range hparts {
		jobs = append(jobs, job{part: p, xOff: l.xa, xStride: c.Dim, yOff: l.logits, yStride: c.Vocab, epi: epiNone})
	}
	e.head, err = e.buildStage(jobs)
	return err
}

// lnParams builds the LnParams words (lnmix.wgsl).
func (e *Engine) lnParams(lnw, lnb uint32, nMix int, mu uint32, shiftOff int) []uint32 {
	c, l := e.cfg, e.lay
	return []uint32{uint32(c.Dim), math.Float32bits(c.Eps), uint32(nMix), uint32(l.x), uint32(l.xa), uint32(l.mix),
		uint32(l.tmax * c.Dim), lnw, lnb, mu, uint32(shiftOff), uint32(c.StateFloats())}
}

func (e *Engine) uploadLayer(li int, limit uint64) error {
	c, w, l := e.cfg, e.w, e.lay
	L := &w.Layers[li]
	g := &layerGPU{}
	e.layers = append(e.layers, layerGPU{})
	defer func() { e.layers[li] = *g }()

	var vb vecBuilder
	ln1w, ln1b := vb.add(L.Ln1W), vb.add(L.Ln1B)
	ln2w, ln2b := vb.add(L.Ln2W), vb.add(L.Ln2B)
	mu := vb.add(L.Lerp[model.MixR], L.Lerp[model.MixW], L.Lerp[model.MixK], L.Lerp[model.MixV], L.Lerp[model.MixA], L.Lerp[model.MixG])
	ffnMu := vb.add(L.FfnLerp)
	w0, a0, v0 := vb.add(L.W0), vb.add(L.A0), vb.add(L.V0)
	kk, ka, rk := vb.add(L.KK), vb.add(L.KA), vb.add(L.RK)
	lnxw, lnxb := vb.add(L.LnXW), vb.add(L.LnXB)
	var err error
	if g.vec, err = e.dev.NewBufferF32(fmt.Sprintf("blk.%d vectors", li), vb.data); err != nil {
		return err
	}
	lf := c.LayerStateFloats()
	if g.lnAtt, err = e.dev.Params(e.lnParams(ln1w, ln1b, 6, mu, li*lf)...); err != nil {
		return err
	}
	if g.lnFfn, err = e.dev.Params(e.lnParams(ln2w, ln2b, 1, ffnMu, li*lf+c.Dim)...); err != nil {
		return err
	}

	// Stage "tm": r, k, v and the LoRA down projections.
	D := c.Dim
	mixOff := func(m int) int { return l.mix + m*l.tmax*D }
	// A matrix job: input offset and token stride, output offset and stride.
	type mj struct {
		m     *model.Matrix
		x, xs int
		y, ys int
		epi   uint32
	}
	hs := l.hidStride
	tmJobs := []mj{
		{&L.Wr, mixOff(model.MixR), D, l.r, D, epiNone},
		{&L.Wk, mixOff(model.MixK), D, l.k, D, epiNone},
		{&L.Wv, mixOff(model.MixV), D, l.v, D, epiNone},
		{&L.W1, mixOff(model.MixW), D, l.hw, hs, epiTanh},
		{&L.A1, mixOff(model.MixA), D, l.ha, hs, epiNone},
		{&L.G1, mixOff(model.MixG), D, l.hg, hs, epiSigmoid},
	}
	if li > 0 {
		tmJobs = append(tmJobs, mj{&L.V1, mixOff(model.MixV), D, l.hv, hs, epiNone})
	}
	place := func(label string, list []mj) (stage, error) {
		p := newArenaPlanner(fmt.Sprintf("blk.%d.%s", li, label), limit)
		var jobs []job
		for _, j := range list {
			parts, err := p.add(j.m)
			if err != nil {
				return stage{}, err
			}
			for _, part := range parts {
				jobs = append(jobs, job{part: part, xOff: j.x, xStride: j.xs, yOff: j.y, yStride: j.ys, epi: j.epi})
			}
		}
		if err := p.upload(e.dev); err != nil {
			return stage{}, err
		}
		e.weightBytes += p.totalBytes()
		return e.buildStage(jobs)
	}
	if g.tm, err = place("tm", tmJobs); err != nil {
		return err
	}
	if g.wo, err = place("wo", []mj{{&L.Wo, l.o, D, l.x, D, epiAdd}}); err != nil {
		return err
	}
	if g.ffk, err = place("ffk", []mj{{&L.FfnKey, mixOff(0), D, l.ffh, c.FFN, epiReLU2}}); err != nil {
		return err
	}
	if g.ffv, err = place("ffv", []mj{{&L.FfnValue, l.ffh, c.FFN, l.x, D, epiAdd}}); err != nil {
		return err
	}

	vecs := [8]uint32{w0, a0, v0, kk, ka, rk, lnxw, lnxb}
	// The LoRA up projections live in one arena, which must fit one binding
	// (they are small: 4·D·rank; the ArenaBytes cap does not apply to it).
	// The fused WKV kernel reads them directly (decode); the same planes also
	// form a grouped product stage that computes them for many tokens at
	// once before the WKV kernel (prefill, or SplitLoRAUps).
	upLimit := e.dev.MaxBindingSize() &^ 255
	up := newArenaPlanner(fmt.Sprintf("blk.%d.up", li), upLimit)
	ups := []*model.Matrix{&L.W2, &L.A2, &L.V2, &L.G2}
	var upParts [4]matPart
	for i, m := range ups {
		if li == 0 && m == &L.V2 {
			continue // layer 0's value-residual LoRA is a dummy
		}
		parts, err := up.add(m)
		if err != nil {
			return err
		}
		if len(parts) != 1 || len(up.arenas) != 1 {
			return fmt.Errorf("gpu: layer %d LoRA up projections do not fit one storage binding of %d bytes", li, upLimit)
		}
		upParts[i] = parts[0]
	}
	if err := up.upload(e.dev); err != nil {
		return err
	}
	e.weightBytes += up.totalBytes()
	g.up = up.arenas[0]
	upOff := func(m int) int { return l.ups + m*l.tmax*D }
	var upJobs []job
	for i, p := range upParts {
		if p.fmt != nil {
			upJobs = append(upJobs, job{part: p, xOff: []int{l.hw, l.ha, l.hv, l.hg}[i], xStride: hs, yOff: upOff(i), yStride: D, epi: epiNone})
		}
	}
	if g.ups, err = e.buildStage(upJobs); err != nil {
		return err
	}
	if li == 0 {
		upParts[2] = upParts[1] // never read; any valid descriptor
	}
	g.wkvParams, err = e.dev.Params(e.wkvParamWords(li, vecs, upParts)...)
	return err
}

// wkvParamWords builds the WkvParams block of layer li (wkv.wgsl): the
// activation and state offsets, the layer's vector offsets (w0, a0, v0, k_k,
// k_a, r_k, ln_x weight and bias) and the LoRA up projections' planes (zero
// when they are precomputed by a separate stage).
func (e *Engine) wkvParamWords(li int, vecs [8]uint32, ups [4]matPart) []uint32 {
	c, l := e.cfg, e.lay
	D := c.Dim
	layer0 := uint32(0)
	if li == 0 {
		layer0 = 1
	}
	wp := []uint32{uint32(D), layer0, uint32(c.StateFloats()), uint32(li*c.LayerStateFloats() + 2*D), uint32(l.hidStride),
		uint32(l.hw), uint32(l.ha), uint32(l.hv), uint32(l.hg), uint32(l.r), uint32(l.k), uint32(l.v), uint32(l.vfirst), uint32(l.o)}
	wp = append(wp, vecs[:]...)
	wp = append(wp, uint32(l.ups), uint32(l.tmax*D)) // precomputed ups: [4][tmax][D]
	for _, p := range ups {
		var typ uint32
		if p.fmt != nil {
			typ = uint32(p.fmt.typ)
		}
		wp = append(wp, typ, uint32(p.k), p.q, p.s)
	}
	return wp
}

// Config returns the model's hyperparameters.
func (e *Engine) Config() model.Config { return e.cfg }

// Device describes the adapter the engine runs on.
func (e *Engine) Device() string { return "gpu: " + e.dev.Info().String() }

// DispatchesPerToken is the number of compute dispatches of one decode step
// (embedding, every layer, ln_out, head and argmax); DispatchesPerLayer those
// of one layer.
func (e *Engine) DispatchesPerToken() int { return e.dispatchesPerToken }

// DispatchesPerLayer is the number of dispatches of one layer in a decode step.
func (e *Engine) DispatchesPerLayer() int { return e.dispatchesPerLayer }

// WeightBytes is the GPU memory taken by the weights.
func (e *Engine) WeightBytes() uint64 { return e.weightBytes }

// GPUDevice returns the device the engine runs on.
func (e *Engine) GPUDevice() *Device { return e.dev }

func (e *Engine) measureDispatches() error {
	r := e.dev.NewRecorder()
	defer r.Reset()
	e.recordEmbed(r, 1)
	before := r.Dispatches()
	e.recordLayer(r, 0, 1, 1)
	e.dispatchesPerLayer = r.Dispatches() - before
	for li := 1; li < e.cfg.Layers; li++ {
		e.recordLayer(r, li, 1, 1)
	}
	e.recordHead(r, 1, true)
	e.dispatchesPerToken = r.Dispatches()
	return r.Err()
}

// ErrEngineClosed is returned by calls on a closed engine.
var ErrEngineClosed = errors.New("gpu: engine is closed")

// Close releases the engine's GPU buffers; the device stays open.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.release()
	return nil
}

func (e *Engine) release() {
	for _, b := range []*Buffer{e.act, e.state, e.ids, e.tok, e.step, e.hstep, e.seqU, e.gvec} {
		b.Release()
	}
	for _, g := range e.layers {
		g.vec.Release()
		for _, st := range []stage{g.tm, g.wo, g.ffk, g.ffv} {
			st.release()
		}
		if g.up != nil {
			g.up.buf.Release()
		}
	}
	for _, p := range e.embed {
		p.arena.buf.Release()
	}
	e.head.release()
}

func (s stage) release() {
	for _, p := range s.parts {
		if p.arena.buf != nil {
			p.arena.buf.Release()
		}
	}
}
