package engine

import "fmt"

// uploader streams the planned arenas to the device and reports progress.
type uploader struct {
	e     *Engine
	st    *stager
	total uint64
}

// arenas uploads a planner's arenas and counts their bytes.
func (u *uploader) arenas(p *arenaPlanner) error {
	if err := p.upload(u.e.dev, u.st); err != nil {
		return err
	}
	u.e.weightBytes += p.totalBytes()
	if u.e.opt.Progress != nil {
		u.e.opt.Progress(u.e.weightBytes, u.total)
	}
	return nil
}

func (e *Engine) uploadGlobals(u *uploader) error {
	c, ml := e.cfg, e.ml
	var err error
	if e.gvec, err = e.dev.NewBufferF32("global vectors", ml.global.data); err != nil {
		return err
	}
	// Embedding table: parts by rows, each its own dispatch.
	if err := u.arenas(ml.embed); err != nil {
		return err
	}
	for _, p := range ml.embedParts {
		params, err := e.dev.ParamsOf(embedParams{D: uint32(c.Dim), Eps: c.Eps, Fmt: uint32(p.fmt.typ), Q: p.q, S: p.s,
			RowLo: uint32(p.rowLo), RowHi: uint32(p.rowLo + p.rows), XOff: uint32(ml.act.x), LnW: ml.ln0w, LnB: ml.ln0b})
		if err != nil {
			return err
		}
		e.embed = append(e.embed, embedPart{arena: p.arena, params: params})
	}
	// ln_out and the head.
	if e.lnOut, err = e.dev.ParamsOf(e.lnParams(ml.outw, ml.outb, 0, 0, 0)); err != nil {
		return err
	}
	if err := u.arenas(ml.head); err != nil {
		return err
	}
	var jobs []job
	for _, p := range ml.headParts {
		jobs = append(jobs, job{part: p, xOff: ml.act.xa, xStride: c.Dim, yOff: ml.act.logits, yStride: c.Vocab, epi: epiNone})
	}
	e.head, err = e.buildStage(jobs)
	return err
}

// lnParams builds the LnParams block (lnmix.wgsl) of a norm.
func (e *Engine) lnParams(lnw, lnb uint32, nMix int, mu uint32, shiftOff int) lnParams {
	c, l := e.cfg, e.ml.act
	return lnParams{D: uint32(c.Dim), Eps: c.Eps, NMix: uint32(nMix), XOff: uint32(l.x), XaOff: uint32(l.xa), MixOff: uint32(l.mix),
		MixStride: uint32(l.tmax * c.Dim), LnW: lnw, LnB: lnb, Mu: mu, ShiftOff: uint32(shiftOff), SlotStride: uint32(c.StateFloats())}
}

func (e *Engine) uploadLayer(li int, u *uploader) error {
	c := e.cfg
	L := &e.ml.layers[li]
	g := layerGPU{}
	var err error
	if g.vec, err = e.dev.NewBufferF32(fmt.Sprintf("blk.%d vectors", li), L.vec.data); err != nil {
		return err
	}
	e.layers = append(e.layers, g)
	gp := &e.layers[li]
	lf := c.LayerStateFloats()
	if gp.lnAtt, err = e.dev.ParamsOf(e.lnParams(L.ln1w, L.ln1b, 6, L.mu, li*lf)); err != nil {
		return err
	}
	if gp.lnFfn, err = e.dev.ParamsOf(e.lnParams(L.ln2w, L.ln2b, 1, L.ffnMu, li*lf+c.Dim)); err != nil {
		return err
	}
	for _, st := range []struct {
		p    *arenaPlanner
		jobs []job
		dst  *stage
	}{{L.tm, L.tmJobs, &gp.tm}, {L.wo, L.woJobs, &gp.wo}, {L.ffk, L.ffkJobs, &gp.ffk}, {L.ffv, L.ffvJobs, &gp.ffv}, {L.up, L.upJobs, &gp.ups}} {
		if err := u.arenas(st.p); err != nil {
			return err
		}
		if *st.dst, err = e.buildStage(st.jobs); err != nil {
			return err
		}
	}
	gp.up = L.up.arenas[0]
	gp.wkvParams, err = e.dev.ParamsOf(e.wkvParamsOf(li, L.vecs, L.upParts))
	return err
}

// wkvParamsOf builds the WkvParams block of layer li (wkv.wgsl): the
// activation and state offsets, the layer's vector offsets (w0, a0, v0,
// k_k, k_a, r_k, ln_x weight and bias) and the LoRA up projections' planes.
func (e *Engine) wkvParamsOf(li int, vecs [8]uint32, ups [4]matPart) wkvParams {
	c, l := e.cfg, e.ml.act
	D := c.Dim
	p := wkvParams{D: uint32(D), SlotStride: uint32(c.StateFloats()), WkvOff: uint32(li*c.LayerStateFloats() + 2*D),
		HidStride: uint32(l.hidStride), Hw: uint32(l.hw), Ha: uint32(l.ha), Hv: uint32(l.hv), Hg: uint32(l.hg),
		R: uint32(l.r), K: uint32(l.k), V: uint32(l.v), Vfirst: uint32(l.vfirst), O: uint32(l.o),
		W0: vecs[0], A0: vecs[1], V0: vecs[2], Kk: vecs[3], Ka: vecs[4], Rk: vecs[5], LnxW: vecs[6], LnxB: vecs[7],
		Ups: uint32(l.ups), UpsStride: uint32(l.tmax * D)}
	if li == 0 {
		p.Layer0 = 1
		ups[2] = ups[1] // layer 0's value residual is never read; any valid descriptor
	}
	up := func(part matPart) upParams {
		if part.fmt == nil {
			return upParams{}
		}
		return upParams{Fmt: uint32(part.fmt.typ), K: uint32(part.k), Q: part.q, S: part.s}
	}
	p.W2, p.A2, p.V2, p.G2 = up(ups[0]), up(ups[1]), up(ups[2]), up(ups[3])
	return p
}
