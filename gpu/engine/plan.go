package engine

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// This file plans the engine's device memory: where the weights go
// (arenas), the activation regions, the state slots and the small per-pass
// buffers. New allocates exactly this plan, and PlanMemory reports it
// before anything is allocated, so a fit check and the real allocation
// cannot drift apart.

// actLayout holds the float offsets of the activation regions, each
// [tmax][width] (mix is [6][tmax][D], ups [4][tmax][D]).
type actLayout struct {
	tmax                                int
	x, xa, mix, r, k, v, o, vfirst, ffh int
	hid, hidStride                      int
	ups                                 int
	hw, ha, hv, hg                      int
	logits                              int
	total                               int
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
	return l
}

// idsLayout is the u32 buffer the head writes: per argmax row its id and
// non-finite count, [tmax][2] at out; per sampled row its id, [tmax] at
// sampled (right after, so that one read-back of readN words brings both
// back); and per slot the token last chosen for it, at chosen (read by
// Continue steps on the device).
type idsLayout struct {
	out, sampled, chosen, total int
	readN                       int
}

func newIDsLayout(tmax, slots int) idsLayout {
	return idsLayout{out: 0, sampled: 2 * tmax, chosen: 3 * tmax, total: 3*tmax + slots, readN: 3 * tmax}
}

// passLayout is the per-pass table buffer, written once per pass: the
// token metadata tok [tmax][4] u32, the sequence table seqs [tmax][4] u32
// and the head rows [tmax][2] u32, each at an offset the device allows a
// binding to start at.
type passLayout struct {
	tok, seqs, head    uint64 // byte offsets
	tokN, seqsN, headN uint64 // byte sizes
	total              uint64
}

func newPassLayout(tmax int, align uint64) passLayout {
	up := func(n uint64) uint64 { return (n + align - 1) / align * align }
	var p passLayout
	p.tokN, p.seqsN, p.headN = 16*uint64(tmax), 16*uint64(tmax), 8*uint64(tmax)
	p.seqs = up(p.tokN)
	p.head = p.seqs + up(p.seqsN)
	p.total = p.head + up(p.headN)
	return p
}

// Plan is the device memory an engine takes, in bytes, and the state slots
// it has.
type Plan struct {
	Weights     uint64 // weight arenas
	Vectors     uint64 // 1-D tensors as f32
	Activations uint64 // activation regions and the logits of one pass
	State       uint64 // StateSlots × the state of one sequence
	Sampler     uint64 // per-slot sampler state: penalty counts, seen tokens, parameters
	Other       uint64 // token tables, ids, parameter blocks
	StateSlots  int
	MaxTokens   int
}

// Total is the sum of the parts.
func (p Plan) Total() uint64 {
	return p.Weights + p.Vectors + p.Activations + p.State + p.Sampler + p.Other
}

// Default sizes of Options.
const (
	defaultMaxTokens   = 64
	defaultStateMemory = 256 << 20
	defaultUpload      = 64 << 20
)

// slotsFor returns the number of state slots opt asks for on a device
// whose storage bindings reach limit bytes: StateSlots when set, else as
// many as StateMemory (capped by the binding) holds, counting each slot's
// state and sampler. The state of all slots is one binding, and so are the
// samplers' penalty counts: more slots than a binding holds is an error
// saying what to lower.
func slotsFor(c model.Config, opt Options, limit uint64) (int, error) {
	per := uint64(c.StateBytes())
	perAll := per + samplerSlotBytes(c.Vocab) // state and sampler of one slot
	fit := int(min(limit/per, limit/(4*uint64(c.Vocab))))
	if opt.StateSlots > 0 {
		if opt.StateSlots > fit {
			return 0, fmt.Errorf("gpu: %d state slots need %d MiB (%.1f MiB each), above this device's storage binding limit of %d MiB: ask for at most %d slots",
				opt.StateSlots, uint64(opt.StateSlots)*per>>20, float64(per)/(1<<20), limit>>20, fit)
		}
		return opt.StateSlots, nil
	}
	budget := opt.StateMemory
	if budget == 0 {
		budget = defaultStateMemory
	}
	n := min(int(budget/perAll), fit)
	if n < 1 {
		if fit < 1 {
			return 0, fmt.Errorf("gpu: the state of one sequence (%.1f MiB) exceeds this device's storage binding limit of %d MiB", float64(per)/(1<<20), limit>>20)
		}
		return 0, fmt.Errorf("gpu: a state memory budget of %d MiB holds no sequence (one needs %.1f MiB with its sampler): raise it", budget>>20, float64(perAll)/(1<<20))
	}
	return n, nil
}

// withDefaults fills the zero fields of opt.
func (opt Options) withDefaults() Options {
	if opt.MaxTokens <= 0 {
		opt.MaxTokens = defaultMaxTokens
	}
	if opt.UploadBudget == 0 {
		opt.UploadBudget = defaultUpload
	}
	return opt
}

// TypicalLimits are the limits of a typical discrete GPU through wgpu on
// Vulkan, for plans made without a device (rwkv info).
var TypicalLimits = gpu.Limits{
	MaxStorageBufferBindingSize:     2 << 30,
	MaxBufferSize:                   4 << 30,
	MinStorageBufferOffsetAlignment: 256,
	MinUniformBufferOffsetAlignment: 256,
}

// PlanMemory returns the device memory New would allocate for w on a
// device with the given limits, without allocating anything; the weight
// layout is planned exactly as New plans it (one row of each matrix is
// repacked to learn its size).
func PlanMemory(w *model.Weights, lim gpu.Limits, opt Options) (Plan, error) {
	opt = opt.withDefaults()
	ml, err := planModel(w, lim, opt)
	if err != nil {
		return Plan{}, err
	}
	return ml.plan(), nil
}

// modelLayout is everything planned before allocation.
type modelLayout struct {
	cfg    model.Config
	opt    Options
	act    actLayout
	ids    idsLayout
	pass   passLayout
	slots  int
	embed  *arenaPlanner
	head   *arenaPlanner
	layers []layerLayout
	global vecBuilder // ln0 and ln_out vectors
	// offsets of the global vectors
	ln0w, ln0b, outw, outb uint32
	embedParts             []matPart
	headParts              []matPart
}

func (ml *modelLayout) plan() Plan {
	p := Plan{StateSlots: ml.slots, MaxTokens: ml.act.tmax}
	p.Weights = ml.embed.totalBytes() + ml.head.totalBytes()
	p.Vectors = 4 * uint64(len(ml.global.data))
	for i := range ml.layers {
		L := &ml.layers[i]
		for _, pl := range L.planners() {
			p.Weights += pl.totalBytes()
		}
		p.Vectors += 4 * uint64(len(L.vec.data))
	}
	p.Activations = 4 * uint64(ml.act.total)
	p.State = uint64(ml.slots) * uint64(ml.cfg.StateBytes())
	p.Sampler = SamplerBytes(ml.cfg.Vocab, ml.slots)
	p.Other = 4*uint64(ml.ids.total) + ml.pass.total
	return p
}

// planModel lays out w for a device with the given limits.
func planModel(w *model.Weights, lim gpu.Limits, opt Options) (*modelLayout, error) {
	c := w.Config
	if c.HeadSize > 256 || c.HeadSize&(c.HeadSize-1) != 0 {
		return nil, fmt.Errorf("gpu: head size %d is not supported (a power of two up to 256): %w", c.HeadSize, ErrUnsupportedOnGPU)
	}
	if c.Dim%32 != 0 {
		return nil, fmt.Errorf("gpu: embedding width %d is not a multiple of 32: %w", c.Dim, ErrUnsupportedOnGPU)
	}
	if n := opt.MatvecLanes; n != 0 && (n < 4 || n > 256 || n&(n-1) != 0) {
		return nil, fmt.Errorf("gpu: MatvecLanes %d is not a power of two from 4 to 256", n)
	}
	for _, m := range append(w.Matrices(), &w.Embed) {
		if _, err := formatOf(m); err != nil {
			return nil, err
		}
	}
	bind := lim.MaxStorageBufferBindingSize &^ 255
	arenaLimit := bind
	if opt.ArenaBytes > 0 && opt.ArenaBytes < arenaLimit {
		arenaLimit = opt.ArenaBytes
	}
	ml := &modelLayout{cfg: c, opt: opt, act: newActLayout(c, opt.MaxTokens)}
	if n := uint64(4 * ml.act.total); n > bind {
		return nil, fmt.Errorf("gpu: activations for %d tokens per pass need %d MiB, above this device's storage binding limit of %d MiB: lower MaxTokens",
			opt.MaxTokens, n>>20, bind>>20)
	}
	var err error
	if ml.slots, err = slotsFor(c, opt, bind); err != nil {
		return nil, err
	}
	ml.ids = newIDsLayout(opt.MaxTokens, ml.slots)
	ml.pass = newPassLayout(opt.MaxTokens, uint64(max(lim.MinStorageBufferOffsetAlignment, 4)))

	ml.ln0w, ml.ln0b = ml.global.add(w.Ln0W), ml.global.add(w.Ln0B)
	ml.outw, ml.outb = ml.global.add(w.LnOutW), ml.global.add(w.LnOutB)
	ml.embed = newArenaPlanner("token_embd", arenaLimit)
	if ml.embedParts, err = ml.embed.add(&w.Embed); err != nil {
		return nil, err
	}
	ml.head = newArenaPlanner("output", arenaLimit)
	if ml.headParts, err = ml.head.add(&w.Head); err != nil {
		return nil, err
	}
	for l := range w.Layers {
		L, err := planLayer(c, &w.Layers[l], l, ml.act, arenaLimit, bind)
		if err != nil {
			return nil, err
		}
		ml.layers = append(ml.layers, L)
	}
	return ml, nil
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

// layerLayout is one layer's planned weights and vectors.
type layerLayout struct {
	vec                               vecBuilder
	ln1w, ln1b, ln2w, ln2b, mu, ffnMu uint32
	vecs                              [8]uint32 // w0, a0, v0, k_k, k_a, r_k, ln_x weight and bias
	tm, wo, ffk, ffv, up              *arenaPlanner
	tmJobs, woJobs, ffkJobs, ffvJobs  []job
	upParts                           [4]matPart // W2, A2, V2, G2 (V2 unset in layer 0)
	upJobs                            []job
}

func (L *layerLayout) planners() []*arenaPlanner {
	return []*arenaPlanner{L.tm, L.wo, L.ffk, L.ffv, L.up}
}

// planLayer lays out layer li: its vectors, and its matrices in the
// stages of the forward pass (arenas of at most limit bytes; the LoRA up
// projections share one arena of at most bind bytes, which the fused WKV
// kernel binds whole).
func planLayer(c model.Config, L *model.Layer, li int, l actLayout, limit, bind uint64) (layerLayout, error) {
	var g layerLayout
	vb := &g.vec
	g.ln1w, g.ln1b = vb.add(L.Ln1W), vb.add(L.Ln1B)
	g.ln2w, g.ln2b = vb.add(L.Ln2W), vb.add(L.Ln2B)
	g.mu = vb.add(L.Lerp[model.MixR], L.Lerp[model.MixW], L.Lerp[model.MixK], L.Lerp[model.MixV], L.Lerp[model.MixA], L.Lerp[model.MixG])
	g.ffnMu = vb.add(L.FfnLerp)
	g.vecs = [8]uint32{vb.add(L.W0), vb.add(L.A0), vb.add(L.V0), vb.add(L.KK), vb.add(L.KA), vb.add(L.RK), vb.add(L.LnXW), vb.add(L.LnXB)}

	D, hs := c.Dim, l.hidStride
	mixOff := func(m int) int { return l.mix + m*l.tmax*D }
	// A matrix job: input offset and token stride, output offset and stride.
	type mj struct {
		m     *model.Matrix
		x, xs int
		y, ys int
		epi   uint32
	}
	place := func(label string, list []mj) (*arenaPlanner, []job, error) {
		p := newArenaPlanner(fmt.Sprintf("blk.%d.%s", li, label), limit)
		var jobs []job
		for _, j := range list {
			parts, err := p.add(j.m)
			if err != nil {
				return nil, nil, err
			}
			for _, part := range parts {
				jobs = append(jobs, job{part: part, xOff: j.x, xStride: j.xs, yOff: j.y, yStride: j.ys, epi: j.epi})
			}
		}
		return p, jobs, nil
	}
	// Stage "tm": r, k, v and the LoRA down projections.
	tm := []mj{
		{&L.Wr, mixOff(model.MixR), D, l.r, D, epiNone},
		{&L.Wk, mixOff(model.MixK), D, l.k, D, epiNone},
		{&L.Wv, mixOff(model.MixV), D, l.v, D, epiNone},
		{&L.W1, mixOff(model.MixW), D, l.hw, hs, epiTanh},
		{&L.A1, mixOff(model.MixA), D, l.ha, hs, epiNone},
		{&L.G1, mixOff(model.MixG), D, l.hg, hs, epiSigmoid},
	}
	if li > 0 {
		tm = append(tm, mj{&L.V1, mixOff(model.MixV), D, l.hv, hs, epiNone})
	}
	var err error
	if g.tm, g.tmJobs, err = place("tm", tm); err != nil {
		return g, err
	}
	if g.wo, g.woJobs, err = place("wo", []mj{{&L.Wo, l.o, D, l.x, D, epiAdd}}); err != nil {
		return g, err
	}
	if g.ffk, g.ffkJobs, err = place("ffk", []mj{{&L.FfnKey, mixOff(0), D, l.ffh, c.FFN, epiReLU2}}); err != nil {
		return g, err
	}
	if g.ffv, g.ffvJobs, err = place("ffv", []mj{{&L.FfnValue, l.ffh, c.FFN, l.x, D, epiAdd}}); err != nil {
		return g, err
	}
	// The LoRA up projections live in one arena, which must fit one
	// binding (they are small: 4·D·rank; ArenaBytes does not apply). The
	// fused WKV kernel reads them directly (decode); the same planes also
	// form a grouped product stage computing them for many tokens before
	// the WKV kernel (prefill, or SplitLoRAUps).
	g.up = newArenaPlanner(fmt.Sprintf("blk.%d.up", li), bind)
	ups := []*model.Matrix{&L.W2, &L.A2, &L.V2, &L.G2}
	upIn := []int{l.hw, l.ha, l.hv, l.hg}
	for i, m := range ups {
		if li == 0 && m == &L.V2 {
			continue // layer 0's value-residual LoRA is a dummy
		}
		parts, err := g.up.add(m)
		if err != nil {
			return g, err
		}
		if len(parts) != 1 || len(g.up.arenas) != 1 {
			return g, fmt.Errorf("gpu: layer %d LoRA up projections do not fit one storage binding of %d bytes", li, bind)
		}
		g.upParts[i] = parts[0]
		g.upJobs = append(g.upJobs, job{part: parts[0], xOff: upIn[i], xStride: hs, yOff: l.ups + i*l.tmax*D, yStride: D, epi: epiNone})
	}
	return g, nil
}
