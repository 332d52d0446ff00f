package engine

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
)

// This file records the forward pass of one pass (at most MaxTokens tokens
// of any number of sequences): the embedding, per layer the time mix (norm
// and shift, the r/k/v/LoRA-down products, WKV, the output projection) and
// the channel mix (norm and shift, FFN key, FFN value), then ln_out over
// the rows the head needs, the head, and the argmax of the rows that ask
// for a token. The function names follow cpuref's.

// recordPass records the whole network for a pass of T tokens in nSeqs
// sequences whose head computes rows rows, the first tokenRows of which
// also get their argmax.
func (e *Engine) recordPass(r *gpu.Recorder, T, nSeqs, rows, tokenRows int) {
	e.recordEmbed(r, T)
	for li := range e.layers {
		e.recordLayer(r, li, T, nSeqs)
	}
	if rows > 0 {
		e.recordHead(r, rows, tokenRows)
	}
}

// binding of a region of the pass tables.
func (e *Engine) passBinding(off, size uint64) gpu.Binding {
	return gpu.Binding{Buf: e.pass, Offset: off, Size: size}
}

// recordEmbed records x[t] = ln0(E[id of token t]) for T tokens.
func (e *Engine) recordEmbed(r *gpu.Recorder, T int) {
	pl := e.ml.pass
	for _, p := range e.embed {
		r.Dispatch(e.k.embed, []gpu.Binding{{Buf: p.arena.buf}, {Buf: e.gvec}, {Buf: e.act}, {Buf: e.ids}, {Buf: p.params},
			e.passBinding(pl.tok, pl.tokN)}, uint32(T), 1, 1)
	}
}

// recordLayer records layer li for T tokens of nSeqs sequences.
func (e *Engine) recordLayer(r *gpu.Recorder, li, T, nSeqs int) {
	e.recordTimeMix(r, li, T, nSeqs)
	e.recordChannelMix(r, li, T)
}

// lnBindings are the bindings of lnmix for one norm's parameters.
func (e *Engine) lnBindings(vec, params *gpu.Buffer) []gpu.Binding {
	pl := e.ml.pass
	return []gpu.Binding{{Buf: vec}, {Buf: e.act}, {Buf: e.state}, e.passBinding(pl.tok, pl.tokN), {Buf: params}, {}}
}

// recordTimeMix records cpuref.TimeMix: ln1 and token shift, the grouped
// r/k/v/LoRA-down product, (for long passes) the LoRA up products, the
// WKV-7 kernel, and the output projection with the residual.
func (e *Engine) recordTimeMix(r *gpu.Recorder, li, T, nSeqs int) {
	g := &e.layers[li]
	r.Dispatch(e.k.lnmix, e.lnBindings(g.vec, g.lnAtt), uint32(T), 1, 1)
	e.recordStage(r, g.tm, T)
	wkv := e.k.wkv
	if e.opt.SplitLoRAUps || T > splitUpsAbove {
		e.recordStage(r, g.ups, T)
		wkv = e.k.wkvPre
	}
	pl := e.ml.pass
	r.Dispatch(wkv, []gpu.Binding{{Buf: g.up.buf}, {Buf: g.vec}, {Buf: e.act}, {Buf: e.state}, {Buf: g.wkvParams},
		e.passBinding(pl.seqs, pl.seqsN)}, uint32(e.cfg.Heads), uint32(nSeqs), 1)
	e.recordStage(r, g.wo, T)
}

// recordChannelMix records cpuref.ChannelMix: ln2 and token shift, FFN key
// with ReLU², FFN value with the residual.
func (e *Engine) recordChannelMix(r *gpu.Recorder, li, T int) {
	g := &e.layers[li]
	r.Dispatch(e.k.lnmix, e.lnBindings(g.vec, g.lnFfn), uint32(T), 1, 1)
	e.recordStage(r, g.ffk, T)
	e.recordStage(r, g.ffv, T)
}

// recordStage records a weight stage for T tokens: the matvec kernel for a
// few tokens, the tiled matmul beyond.
func (e *Engine) recordStage(r *gpu.Recorder, st stage, T int) {
	for _, d := range st.parts {
		matmul := T > mvMaxT
		p, err := d.params(e.dev, T, matmul)
		if err != nil {
			r.Fail(fmt.Errorf("gpu: stage parameters for %d tokens: %w", T, err))
			return
		}
		if !matmul {
			k := d.k.mvN
			if T == 1 {
				k = d.k.mv1
			}
			x, y, z := e.dev.Grid(d.mvWGs, 1)
			r.Dispatch(k, []gpu.Binding{{Buf: d.arena.buf}, {Buf: e.act}, {Buf: p}}, x, y, z)
		} else {
			r.Dispatch(d.k.mm, []gpu.Binding{{Buf: d.arena.buf}, {Buf: e.act}, {Buf: p}},
				d.mmWGs, uint32((T+d.mmTT-1)/d.mmTT), 1)
		}
	}
}

// recordHead records cpuref.Head for the rows listed in the pass's head
// table: ln_out gathers them into xa, the head multiplies, and the argmax
// picks a token for the first tokenRows rows.
func (e *Engine) recordHead(r *gpu.Recorder, rows, tokenRows int) {
	pl := e.ml.pass
	headRows := e.passBinding(pl.head, pl.headN)
	r.Dispatch(e.k.lnRows, []gpu.Binding{{Buf: e.gvec}, {Buf: e.act}, {}, {}, {Buf: e.lnOut}, headRows}, uint32(rows), 1, 1)
	e.recordStage(r, e.head, rows)
	if tokenRows > 0 {
		r.Dispatch(e.k.argmax, []gpu.Binding{{}, {}, {Buf: e.act}, {Buf: e.ids}, {}, {}, headRows, {Buf: e.argmax}}, uint32(tokenRows), 1, 1)
	}
}
