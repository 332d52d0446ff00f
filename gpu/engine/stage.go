package engine

import (
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// This file turns matrix products into dispatches: a stage is a set of
// products that can run together (for example r, k, v and the LoRA downs),
// grouped by weight arena, each group one dispatch of the matvec kernel
// (decode) or the tiled matmul (prefill), specialised for the group's
// formats.

// stage is one step of the forward pass that multiplies with weights: one
// dispatch per arena its matrices live in.
type stage struct {
	parts []stageDispatch
}

type stageDispatch struct {
	arena   *arena
	mv, mm  matvecParams  // job tables for matvec (ROWS blocks) and matmul (TR blocks); T set per use
	k       weightKernels // specialised for the jobs' formats
	mvWGs   uint32        // matvec workgroups
	mmWGs   uint32        // matmul row blocks
	mmTT    int           // matmul tokens per tile
	matmulK bool          // every job's K is a multiple of 32 (matmul usable)
	rows    int
}

// job is one matrix (part) multiplication inside a stage.
type job struct {
	part          matPart
	xOff, xStride int
	yOff, yStride int
	epi           uint32
}

// Epilogues of jobs.wgsl.
const (
	epiNone    = 0
	epiTanh    = 1
	epiSigmoid = 2
	epiReLU2   = 3
	epiAdd     = 4
)

// matvecShape chooses the matvec workgroup size and rows per workgroup for a
// stage whose rows have k columns: a team of TPR = wg/rows lanes shares a
// row, each lane reading about four or more 8-weight pieces, so that long
// rows spread over many lanes and short rows waste none. On a software
// adapter (lavapipe), where every barrier of the team's reduction is
// expensive, small teams of 4 lanes measured 4× faster.
func (e *Engine) matvecShape(k int) (wg, rows int) {
	if n := e.opt.MatvecLanes; n > 0 {
		return 256, 256 / n
	}
	if e.dev.Info().IsSoftware() {
		return 64, 16
	}
	tpr := 8
	for tpr < 64 && k/8/(2*tpr) >= 4 {
		tpr *= 2
	}
	return 256, 256 / tpr
}

// matmulShape returns the prefill tile: tokens per tile and invocations per
// workgroup (matmul.wgsl: a 4×4 register tile per invocation, so wg·16 =
// mmTR·tt). 64 tokens need 16.5 KiB of workgroup memory, a little over
// WebGPU's guaranteed 16 KiB; devices that offer less get 32-token tiles.
func (e *Engine) matmulShape() (tt, wg int) {
	const need = 4 * 32 * (mmTR + 1 + 64 + 1) // w_tile + x_tile of matmul.wgsl
	have := e.dev.Limits().MaxComputeWorkgroupStorageSize
	if c := e.opt.WorkgroupMemory; c > 0 && c < have {
		have = c
	}
	if have >= need {
		return 64, 256
	}
	return 32, 128
}

// weightKernels returns the kernels of a weight stage specialised for a set
// of formats and a matvec shape (compiled once per combination; most stages
// use one format, so their inner loops call its dq8 function directly):
// matvec for one token (decode), matvec for up to mvMaxT tokens, and the
// tiled matmul.
func (e *Engine) weightKernels(types []gguf.Type, mvWG, mvRows int) (weightKernels, error) {
	key := fmt.Sprint(types, mvWG, mvRows)
	if ks, ok := e.k.weights[key]; ok {
		return ks, nil
	}
	body := dq8Body(types)
	itoa := func(v int) string { return fmt.Sprint(v) }
	var ks weightKernels
	var err error
	mvDefs := func(maxT int) map[string]string {
		return map[string]string{"WG": itoa(mvWG), "ROWS": itoa(mvRows), "MAXT": itoa(maxT), "DQ8_BODY": body}
	}
	if ks.mv1, err = e.build("matvec.wgsl", "matvec", mvDefs(1)); err != nil {
		return ks, err
	}
	if ks.mvN, err = e.build("matvec.wgsl", "matvec", mvDefs(mvMaxT)); err != nil {
		return ks, err
	}
	tt, mmWG := e.matmulShape()
	if ks.mm, err = e.build("matmul.wgsl", "matmul", map[string]string{"WG": itoa(mmWG), "TR": itoa(mmTR), "TT": itoa(tt), "DQ8_BODY": body}); err != nil {
		return ks, err
	}
	if e.k.weights == nil {
		e.k.weights = map[string]weightKernels{}
	}
	e.k.weights[key] = ks
	return ks, nil
}

// weightKernels are the kernels of one weight stage's format set.
type weightKernels struct {
	mv1, mvN, mm *gpu.Kernel
}

// buildStage groups jobs by arena into dispatches and writes their job
// tables (one for matvec's row blocks, one for matmul's).
func (e *Engine) buildStage(jobs []job) (stage, error) {
	var st stage
	byArena := map[*arena][]job{}
	var order []*arena
	for _, j := range jobs {
		if _, ok := byArena[j.part.arena]; !ok {
			order = append(order, j.part.arena)
		}
		byArena[j.part.arena] = append(byArena[j.part.arena], j)
	}
	for _, a := range order {
		list := byArena[a]
		for len(list) > 0 {
			n := min(len(list), maxJobs)
			d, err := e.stageDispatch(a, list[:n])
			if err != nil {
				return st, err
			}
			st.parts = append(st.parts, d)
			list = list[n:]
		}
	}
	return st, nil
}

func (e *Engine) stageDispatch(a *arena, jobs []job) (stageDispatch, error) {
	sd := stageDispatch{arena: a, matmulK: true}
	var types []gguf.Type
	maxK := 0
	for _, j := range jobs {
		types = append(types, j.part.fmt.typ)
		maxK = max(maxK, j.part.k)
	}
	mvWG, mvRows := e.matvecShape(maxK)
	var err error
	if sd.k, err = e.weightKernels(distinctTypes(types), mvWG, mvRows); err != nil {
		return sd, err
	}
	table := func(rowsPerWG int) (matvecParams, uint32) {
		t := matvecParams{NJobs: uint32(len(jobs))}
		var start uint32
		for i, j := range jobs {
			p := j.part
			t.Jobs[i] = jobParams{Fmt: uint32(p.fmt.typ), Rows: uint32(p.rows), K: uint32(p.k), Q: p.q, S: p.s,
				XOff: uint32(j.xOff), XStride: uint32(j.xStride), YOff: uint32(j.yOff + p.rowLo), YStride: uint32(j.yStride), Epi: j.epi, WgStart: start}
			start += uint32((p.rows + rowsPerWG - 1) / rowsPerWG)
		}
		return t, start
	}
	for _, j := range jobs {
		sd.rows += j.part.rows
		if j.part.k%32 != 0 {
			sd.matmulK = false
		}
	}
	sd.mv, sd.mvWGs = table(mvRows)
	sd.mm, sd.mmWGs = table(mmTR)
	sd.mmTT, _ = e.matmulShape()
	return sd, nil
}

// params returns the dispatch's parameter block (the job table of matvec,
// or of matmul when matmul is set) for T tokens. The device keeps one
// buffer per distinct content, so each (dispatch, T) is made once; the
// recorded programs (one per pass shape) hold on to them.
func (d *stageDispatch) params(dev *gpu.Device, T int, matmul bool) (*gpu.Buffer, error) {
	p := d.mv
	if matmul {
		p = d.mm
	}
	p.T = uint32(T)
	return dev.ParamsOf(p)
}
