package engine

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// Options tune how a model is laid out on the device.
type Options struct {
	// MaxTokens is the most tokens one pass processes (the tokens of all
	// sequences of a step together; a longer step is split into passes);
	// it sizes the activation buffers. 0 means 64.
	MaxTokens int
	// StateSlots is the number of state slots: sessions that can exist at
	// once. 0 means as many as StateMemory holds. The slots are one
	// storage binding, so the device's binding limit caps them.
	StateSlots int
	// StateMemory is the memory given to state slots when StateSlots is 0;
	// 0 means 256 MiB (capped by the binding limit).
	StateMemory uint64
	// UploadBudget bounds the host memory an upload keeps in the device's
	// staging area before it waits for the GPU to take it (0 = 64 MiB).
	UploadBudget uint64
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
	// row) also when decoding. Passes of more than splitUpsAbove tokens
	// always split, since the fused kernel would compute them token after
	// token. Which is faster for decode depends on the GPU; measure with
	// rwkv bench --split-lora-ups.
	SplitLoRAUps bool
	// Log receives load progress and layout facts; nil is quiet.
	Log io.Writer
	// Progress, when set, is called during the upload with the bytes of
	// weights written so far and the total.
	Progress func(done, total uint64)
}

// Engine is the RWKV-7 forward pass on a WebGPU device, implementing
// model.Engine. Weights stay in their stored format on the device; the
// state of every session and all activations stay there too.
//
// An Engine is safe for concurrent use. Recording and submitting a pass
// holds the engine's lock; waiting for results does not, so one caller's
// next step is recorded while the GPU runs another's.
type Engine struct {
	dev *gpu.Device
	cfg model.Config
	opt Options
	ml  *modelLayout

	act     *gpu.Buffer // activations and logits, f32
	state   *gpu.Buffer // [slots][state floats] f32
	ids     *gpu.Buffer // per-row outputs and per-slot chosen tokens, u32
	pass    *gpu.Buffer // per-pass tables (passLayout), u32
	gvec    *gpu.Buffer // global f32 vectors: ln0 w, b; ln_out w, b
	layers  []layerGPU
	embed   []embedPart
	head    stage
	lnOut   *gpu.Buffer // lnParams of ln_out
	argmax  *gpu.Buffer // argmaxParams
	sampler *Sampler    // per-slot RWKV samplers (Session.SetSampling)
	// programs holds each pass shape's dispatches, recorded once.
	programs map[passShape]*gpu.Program

	k kernels

	mu     sync.Mutex
	slots  []*Session // nil = free
	closed bool
	// dispatchesPerToken and perLayer are measured when the engine is built.
	dispatchesPerToken int
	dispatchesPerLayer int
	weightBytes        uint64
	plan               Plan
	cost               HostCost // host time of passes, see HostCost
}

type kernels struct {
	lnmix, lnRows, wkv, embed, argmax, copySlot *gpu.Kernel
	// wkvPre is the WKV kernel reading precomputed LoRA up projections.
	wkvPre *gpu.Kernel
	// weights holds matvec and matmul per format set (weightKernels).
	weights map[string]weightKernels
}

// Kernel tile shapes (the placeholders of matvec.wgsl and matmul.wgsl).
const (
	mvMaxT = 8
	// splitUpsAbove: passes of more tokens compute the LoRA up projections
	// as a grouped product before the WKV kernel instead of inside it.
	splitUpsAbove = 8
	mmTR          = 64 // matmul rows per tile; the tokens per tile come from matmulShape
	maxJobs       = 8
)

type layerGPU struct {
	vec          *gpu.Buffer
	lnAtt, lnFfn *gpu.Buffer // lnParams
	tm, wo, ffk  stage
	ffv          stage
	up           *arena
	ups          stage // the up projections as a weight stage (prefill, SplitLoRAUps)
	wkvParams    *gpu.Buffer
}

type embedPart struct {
	arena  *arena
	params *gpu.Buffer
}

// New uploads the model's weights to the device and prepares the kernels.
// The weights' GGUF file must stay open until New returns; afterwards the
// engine needs only the device. Host memory beyond the mapped file stays
// bounded during the upload (Options.UploadBudget plus a few MiB of
// repacked rows).
func New(dev *gpu.Device, w *model.Weights, opt Options) (*Engine, error) {
	opt = opt.withDefaults()
	ml, err := planModel(w, dev.Limits(), opt)
	if err != nil {
		return nil, err
	}
	c := w.Config
	e := &Engine{dev: dev, cfg: c, opt: opt, ml: ml, plan: ml.plan(), slots: make([]*Session, ml.slots)}
	ok := false
	defer func() {
		if !ok {
			e.release()
		}
	}()
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
	if e.sampler, err = NewSampler(dev, c.Vocab, ml.slots, opt.MaxTokens); err != nil {
		return nil, err
	}
	up := &uploader{e: e, st: &stager{budget: opt.UploadBudget, file: w.File}, total: e.plan.Weights}
	if err := e.uploadGlobals(up); err != nil {
		return nil, err
	}
	for l := range ml.layers {
		if err := e.uploadLayer(l, up); err != nil {
			return nil, err
		}
		e.logf("layer %d/%d uploaded", l+1, c.Layers)
	}
	if err := dev.Flush(); err != nil {
		return nil, err
	}
	if err := e.measureDispatches(); err != nil {
		return nil, err
	}
	ok = true
	e.logf("weights on the GPU: %.1f MiB; activations %.1f MiB; state %.1f MiB in %d slots; %d dispatches per token (%d per layer)",
		float64(e.weightBytes)/(1<<20), float64(e.plan.Activations)/(1<<20), float64(e.plan.State)/(1<<20), ml.slots,
		e.dispatchesPerToken, e.dispatchesPerLayer)
	return e, nil
}

func (e *Engine) logf(format string, args ...any) {
	if e.opt.Log != nil {
		fmt.Fprintf(e.opt.Log, "gpu: "+format+"\n", args...)
	}
}

// build specialises and compiles one kernel entry point.
func (e *Engine) build(file, entry string, defs map[string]string) (*gpu.Kernel, error) {
	src, err := shaders.Source(file, defs)
	if err != nil {
		return nil, err
	}
	return e.dev.Kernel(strings.TrimSuffix(file, ".wgsl")+":"+entry, src, entry)
}

// f32Define formats a model constant for a WGSL define (shortest text
// that reads back as the same float32).
func f32Define(x float32) string { return strconv.FormatFloat(float64(x), 'g', -1, 32) }

// compile builds the kernels that do not depend on a stage's formats: the
// norms, the WKV kernel (for the formats of the LoRA up projections), the
// embedding (for the embedding's format), the argmax and the slot copy.
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
			"UPS_PRECOMPUTED": fmt.Sprint(pre), "DECAY_SCALE": f32Define(model.DecayScale),
			"GN_EPS": f32Define(model.GroupNormEps), "L2_FLOOR": f32Define(model.L2NormFloor)})
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
	if k.copySlot, err = e.build("slots.wgsl", "copy_slot", map[string]string{"WG": "256"}); err != nil {
		return err
	}
	return nil
}

// allocate creates the activation, state and per-pass buffers.
func (e *Engine) allocate() error {
	var err error
	ml := e.ml
	if e.act, err = e.dev.NewBuffer("activations", uint64(4*ml.act.total)); err != nil {
		return err
	}
	if e.state, err = e.dev.NewBuffer("state", uint64(ml.slots)*uint64(e.cfg.StateBytes())); err != nil {
		return err
	}
	if e.ids, err = e.dev.NewBuffer("ids", uint64(4*ml.ids.total)); err != nil {
		return err
	}
	if e.pass, err = e.dev.NewBuffer("pass tables", ml.pass.total); err != nil {
		return err
	}
	e.argmax, err = e.dev.ParamsOf(argmaxParams{V: uint32(e.cfg.Vocab), Logits: uint32(ml.act.logits), Out: uint32(ml.ids.out), Chosen: uint32(ml.ids.chosen)})
	return err
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

// Plan is the device memory the engine allocated.
func (e *Engine) Plan() Plan { return e.plan }

// StateSlots is the number of sessions that can exist at once.
func (e *Engine) StateSlots() int { return len(e.slots) }

// MaxTokens is the most tokens one pass processes.
func (e *Engine) MaxTokens() int { return e.ml.act.tmax }

// GPUDevice returns the device the engine runs on.
func (e *Engine) GPUDevice() *gpu.Device { return e.dev }

// measureDispatches records (without submitting) one decode step of one
// sequence that asks for a token.
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
	e.recordHead(r, 1, 1)
	e.dispatchesPerToken = r.Dispatches()
	return r.Err()
}

// ErrEngineClosed is returned by calls on a closed engine.
var ErrEngineClosed = fmt.Errorf("gpu: engine is %w", model.ErrClosed)

// Close releases the engine's GPU buffers; the device stays open. Sessions
// still open become unusable.
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
	e.releasePrograms()
	for _, b := range []*gpu.Buffer{e.act, e.state, e.ids, e.pass, e.gvec} {
		b.Release()
	}
	if e.sampler != nil {
		e.sampler.Release()
	}
	for _, g := range e.layers {
		g.vec.Release()
	}
	if e.ml != nil {
		e.ml.embed.release()
		e.ml.head.release()
		for i := range e.ml.layers {
			for _, p := range e.ml.layers[i].planners() {
				p.release()
			}
		}
	}
}

// errNotOurs is wrapped when a session from another engine is passed.
var errNotOurs = errors.New("the session belongs to another engine")
