package engine

import (
	"encoding/binary"
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"math"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// This file tests every GPU weight format (the dq8_<fmt> functions of
// shaders/formats.wgsl with their repackers) on its own: dequantized weights
// bit for bit against gguf.DequantizeRow, and the matvec and matmul kernels
// against float64 products, on random and hand-made extreme blocks.

// gpuTypes lists the formats the GPU reads, by type id.
func gpuTypes() []gguf.Type {
	var ts []gguf.Type
	for t := range formats {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

// Hand-made block kinds (extremeBlock).
const (
	kindRandomBytes = iota // every byte random, f16 fields random finite
	kindSubnormal          // f16 fields subnormal
	kindLarge              // f16 fields ≥ 32768, packed scales all ones
	kindZeroQuants         // quants all 0x00
	kindMaxQuants          // quants all 0xff
	kindMaxAll             // f16 fields ±65504, quants and scales all 0xff
	kindZeroScale          // f16 fields ±0
	numKinds
)

func randSign(rng *rand.Rand) uint16 { return uint16(rng.Intn(2)) << 15 }

// extremeBlock overwrites the block blk (of a quantized row) with a kind of
// hand-made extreme block.
func extremeBlock(rng *rand.Rand, typ gguf.Type, blk []byte, kind int) {
	lay := blockLayouts[typ]
	fill := func(r [2]int, v byte) {
		for i := r[0]; i < r[1]; i++ {
			blk[i] = v
		}
	}
	half := func(h uint16) {
		for _, off := range lay.halves {
			binary.LittleEndian.PutUint16(blk[off:], h)
		}
	}
	switch kind {
	case kindRandomBytes:
		rng.Read(blk)
		for _, off := range lay.halves {
			binary.LittleEndian.PutUint16(blk[off:], uint16(rng.Intn(0x7c00))|randSign(rng))
		}
	case kindSubnormal:
		for _, off := range lay.halves {
			binary.LittleEndian.PutUint16(blk[off:], uint16(1+rng.Intn(0x3ff))|randSign(rng))
		}
	case kindLarge:
		for _, off := range lay.halves {
			binary.LittleEndian.PutUint16(blk[off:], 0x7800|uint16(rng.Intn(0x400))|randSign(rng))
		}
		fill(lay.scales, 0xff)
	case kindZeroQuants:
		fill(lay.quants, 0)
	case kindMaxQuants:
		fill(lay.quants, 0xff)
	case kindMaxAll:
		half(0x7bff | randSign(rng))
		fill(lay.quants, 0xff)
		fill(lay.scales, 0xff)
	case kindZeroScale:
		half(randSign(rng))
	}
}

// extremeFloat returns the bits of a float weight of a wide but finite
// range: f16 any finite value (subnormals included), bf16 and f32 values of
// magnitude 2^-40 .. 2^40.
func extremeFloat(rng *rand.Rand, typ gguf.Type) uint32 {
	f32 := math.Float32bits(float32(rng.NormFloat64() * math.Ldexp(1, rng.Intn(81)-40)))
	switch typ {
	case gguf.F16:
		return uint32(uint16(rng.Intn(0x7c00)) | randSign(rng))
	case gguf.BF16:
		return f32 >> 16
	}
	return f32
}

// randomMatrix returns rows×k weights of type typ: each row quantized by
// gguf.QuantizeRow from random values of a random magnitude, and about
// every extremeEvery-th block (element, for float types) replaced by a
// hand-made extreme block of a random kind (0: none).
func randomMatrix(rng *rand.Rand, typ gguf.Type, rows, k, extremeEvery int) *model.Matrix {
	rowBytes, err := typ.RowBytes(k)
	if err != nil {
		panic(err)
	}
	data := make([]byte, rows*rowBytes)
	x := make([]float32, k)
	be, bb := typ.BlockElems(), typ.BlockBytes()
	for r := 0; r < rows; r++ {
		scale := math.Ldexp(1, rng.Intn(13)-6)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * scale)
		}
		row := data[r*rowBytes : (r+1)*rowBytes]
		if err := gguf.QuantizeRow(typ, x, row); err != nil {
			panic(err)
		}
		if extremeEvery == 0 {
			continue
		}
		for b := 0; b < k/be; b++ {
			if rng.Intn(extremeEvery) != 0 {
				continue
			}
			blk := row[b*bb : (b+1)*bb]
			switch typ {
			case gguf.F32:
				binary.LittleEndian.PutUint32(blk, extremeFloat(rng, typ))
			case gguf.F16, gguf.BF16:
				binary.LittleEndian.PutUint16(blk, uint16(extremeFloat(rng, typ)))
			default:
				extremeBlock(rng, typ, blk, rng.Intn(numKinds))
			}
		}
	}
	return &model.Matrix{Name: fmt.Sprintf("%s[%dx%d]", typ, rows, k), Type: typ, Rows: rows, Cols: k, RowBytes: rowBytes, Data: data}
}

// dequantMatrix is the reference: gguf.DequantizeRow of every row.
func dequantMatrix(t testing.TB, m *model.Matrix) []float32 {
	out := make([]float32, m.Rows*m.Cols)
	for r := 0; r < m.Rows; r++ {
		require.NoError(t, gguf.DequantizeRow(m.Type, m.Row(r), out[r*m.Cols:(r+1)*m.Cols]))
	}
	return out
}

// kernelRig is a device with the dq8 dump kernel (for every GPU format) and
// an Engine shell (device, options, activation buffer) whose buildStage and
// recordStage lay out, specialise and record weight stages exactly as the
// engine does.
type kernelRig struct {
	d    *gpu.Device
	e    *Engine
	dump *gpu.Kernel
}

// dumpWGSL writes every weight of a matrix part, dequantized by dq8.
const dumpWGSL = `
@group(0) @binding(0) var<storage, read> W: array<u32>;         // W: [words] u32, weight arena
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // out: [rows·k] f32
@group(0) @binding(2) var<uniform> P: DumpParams;

struct DumpParams {
    fmt: u32,
    q: u32,
    s: u32,
    k: u32,
    rows: u32,
    out_off: u32,   // float offset of the part's first row in out
    _p0: u32,
    _p1: u32,
}

fn dq8(fmt: u32, q: u32, s: u32, k: u32, row: u32, p: u32) -> W8 {
    {{DQ8_BODY}}
}

@compute @workgroup_size(WG)
fn dump(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let per = P.k / 8u;
    if (i >= P.rows * per) {
        return;
    }
    let w = dq8(P.fmt, P.q, P.s, P.k, i / per, i % per);
    let o = P.out_off + 8u * i;
    out[o] = w.a.x;
    out[o + 1u] = w.a.y;
    out[o + 2u] = w.a.z;
    out[o + 3u] = w.a.w;
    out[o + 4u] = w.b.x;
    out[o + 5u] = w.b.y;
    out[o + 6u] = w.b.z;
    out[o + 7u] = w.b.w;
}
`

func newKernelRig(t testing.TB, withDump bool) *kernelRig {
	t.Helper()
	d := gputest.OpenDevice(t)
	rig := &kernelRig{d: d, e: &Engine{dev: d}}
	if withDump {
		common, err := shaders.Source(shaders.Common, nil)
		require.NoError(t, err)
		frm, err := shaders.Source("formats.wgsl", nil)
		require.NoError(t, err)
		src := "const WG: u32 = 64u;\n" + common + frm + dumpWGSL
		src = strings.Replace(src, "{{DQ8_BODY}}", dq8Body(gpuTypes()), 1)
		rig.dump, err = d.Kernel("dq8-dump", src, "dump")
		require.NoError(t, err)
	}
	return rig
}

// gpuDequant places m in arenas of at most limit bytes (0: the device's
// binding limit) and returns every weight as dq8 computes it.
func (rig *kernelRig) gpuDequant(t testing.TB, m *model.Matrix, limit uint64) []float32 {
	t.Helper()
	d := rig.d
	if limit == 0 {
		limit = d.MaxBindingSize() &^ 255
	}
	p := newArenaPlanner("dump", limit)
	parts, err := p.add(m)
	require.NoError(t, err)
	require.NoError(t, p.upload(d, &stager{budget: 1 << 30}))
	defer func() {
		for _, a := range p.arenas {
			a.buf.Release()
		}
	}()
	out, err := d.NewBuffer("dump out", uint64(4*m.Rows*m.Cols))
	require.NoError(t, err)
	defer out.Release()
	r := d.NewRecorder()
	for _, pt := range parts {
		params, err := d.Params(uint32(pt.fmt.typ), pt.q, pt.s, uint32(pt.k), uint32(pt.rows), uint32(pt.rowLo*pt.k), 0, 0)
		require.NoError(t, err)
		x, y, z := d.Grid(uint32(pt.rows*pt.k/8), 64)
		r.Dispatch(rig.dump, []gpu.Binding{{Buf: pt.arena.buf}, {Buf: out}, {Buf: params}}, x, y, z)
	}
	require.NoError(t, r.Submit())
	got, err := d.ReadF32(out, 0, m.Rows*m.Cols)
	require.NoError(t, err)
	return got
}

// requireSameBits fails at the first weight whose float32 bits differ.
func requireSameBits(t testing.TB, what string, m *model.Matrix, got, want []float32) {
	t.Helper()
	require.Len(t, got, len(want))
	bad := 0
	for i := range want {
		if math.Float32bits(got[i]) == math.Float32bits(want[i]) {
			continue
		}
		if bad == 0 {
			r, c := i/m.Cols, i%m.Cols
			be, bb := m.Type.BlockElems(), m.Type.BlockBytes()
			blk := m.Row(r)[c/be*bb : (c/be+1)*bb]
			t.Errorf("%s: %s row %d column %d: GPU %g (%#08x), reference %g (%#08x); block % x",
				what, m.Name, r, c, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]), blk)
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %s: %d of %d weights differ", what, m.Name, bad, len(want))
	}
}

// TestDq8MatchesDequantizeRow checks dq8 of every format, bit for bit,
// against gguf.DequantizeRow: on random rows with about half of the blocks
// hand-made extremes (every byte random; subnormal, large, ±0 and ±65504
// scale fields; all-zero and all-ones quants and packed scales), split
// across arenas at odd rows; and on the fixture models' tensors against
// the dequantized fixtures.
func TestDq8MatchesDequantizeRow(t *testing.T) {
	rig := newKernelRig(t, true)
	rng := rand.New(rand.NewSource(1))
	for _, typ := range gpuTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			ks := []int{256, 768}
			if typ.BlockElems() < 256 {
				ks = append(ks, 32, 96)
			}
			for _, k := range ks {
				m := randomMatrix(rng, typ, 9, k, 2)
				want := dequantMatrix(t, m)
				requireSameBits(t, "dq8", m, rig.gpuDequant(t, m, 0), want)
				// Parts of 3 rows: parts start at odd rows.
				rowBytes := uint64(len(repackBytes(m, 1)))
				requireSameBits(t, "dq8 split", m, rig.gpuDequant(t, m, 3*rowBytes+64), want)
			}
		})
	}
	t.Run("fixtures", func(t *testing.T) {
		for _, typ := range gpuFixtureTypes[1:] { // the F32 file has no dequantized fixture
			w := numtest.LoadFixture(t, typ)
			check := func(m *model.Matrix, file string) {
				want, err := numtest.ReadF32(filepath.Join(fixtures.Path(t, "tiny", "dequant"), file))
				require.NoError(t, err)
				require.Equal(t, want, dequantMatrix(t, m), "gguf.DequantizeRow vs %s", file)
				requireSameBits(t, file, m, rig.gpuDequant(t, m, 0), want)
			}
			check(&w.Layers[0].Wk, "rwkv7-tiny-"+typ+".blk.0.time_mix_key.weight.f32")
			if typ == "Q4_K_M" {
				require.Equal(t, gguf.Q6_K, w.Head.Type)
				check(&w.Head, "rwkv7-tiny-Q4_K_M.output.weight.f32")
			}
		}
	})
}

// repackBytes is the GPU size of the first rows rows of m.
func repackBytes(m *model.Matrix, rows int) []byte {
	q, s := formats[m.Type].repack(m.Data[:rows*m.RowBytes], rows*m.RowBytes/m.Type.BlockBytes())
	return append(append([]byte(nil), q...), s...)
}

// stageCase is one matrix of a test stage with its activations.
type stageCase struct {
	m        *model.Matrix
	w        []float32 // reference weights
	xOff     int       // [tmax][k] inputs
	yOff     int       // [tmax][rows] outputs
	ref, mag []float64 // [tmax][rows] Σ w·x and Σ |w·x|
}

// TestMatvecMatmulFormats runs the matvec (T = 1..4) and matmul (T = 5, 33)
// kernels on stages of every format: rows 1, 7, 100 and 300 (a single row,
// fewer rows than a workgroup's, several workgroups with a partial last
// one), K 256 and 768 (and 32, 96 for the 32-element formats), with about
// one block in eight a hand-made extreme; once in whole arenas and once
// with an arena limit that splits the matrices at odd rows across arenas.
// The reference is y = Σ DequantizeRow(w)·x in float64.
//
// Tolerance: |y − ref| ≤ 1e-5·Σ|w·x| + 1e-6 per output. The kernels sum
// exact products in float32 (matvec: 8-term dots per lane and a tree over
// 64 lanes; matmul: sequentially over K), whose rounding error is a small
// multiple of 2^-24·Σ|w·x|·√K; 1e-5 leaves room over K = 768 without
// letting a wrong weight through, and 1e-6 covers outputs whose terms
// cancel.
func TestMatvecMatmulFormats(t *testing.T) {
	rig := newKernelRig(t, false)
	rng := rand.New(rand.NewSource(2))
	for _, typ := range gpuTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			ks := []int{256, 768}
			if typ.BlockElems() < 256 {
				ks = append(ks, 32, 96)
			}
			var ms []*model.Matrix
			for _, k := range ks {
				for _, rows := range []int{1, 7, 100, 300} {
					ms = append(ms, randomMatrix(rng, typ, rows, k, 8))
				}
			}
			// Whole arenas, and a limit that splits the matrices: about 37
			// rows of the K = 768 ones per arena.
			require.Equal(t, 768, ms[7].Cols)
			rig.checkStages(t, rng, ms, 37*uint64(len(repackBytes(ms[7], 1)))+200)
		})
	}
	// All formats in one stage: dispatches of 8 jobs whose dq8 switches
	// over their formats, as in the engine's stages that mix a quantized
	// projection with float LoRA matrices.
	t.Run("mixed", func(t *testing.T) {
		var ms []*model.Matrix
		for i, typ := range gpuTypes() {
			ms = append(ms, randomMatrix(rng, typ, []int{7, 100}[i%2], 512, 8))
		}
		rig.checkStages(t, rng, ms, 40<<10)
	})
}

// checkStages runs matrices ms as one stage, in whole arenas and in arenas
// of at most splitLimit bytes, for T = 1..4 (matvec), 5 and 33 (matmul),
// on random inputs, against float64 products of the dequantized weights.
func (rig *kernelRig) checkStages(t *testing.T, rng *rand.Rand, ms []*model.Matrix, splitLimit uint64) {
	const tmax = 33
	d := rig.d
	var cases []*stageCase
	off := 0
	region := func(n int) int { o := off; off += (n + 63) &^ 63; return o }
	for _, m := range ms {
		cases = append(cases, &stageCase{m: m, w: dequantMatrix(t, m), xOff: region(tmax * m.Cols), yOff: region(tmax * m.Rows)})
	}
	x := make([]float32, off)
	for _, c := range cases {
		k, rows := c.m.Cols, c.m.Rows
		xs := x[c.xOff : c.xOff+tmax*k]
		for i := range xs {
			xs[i] = float32(rng.Float64()*2 - 1)
		}
		c.ref, c.mag = make([]float64, tmax*rows), make([]float64, tmax*rows)
		for tk := 0; tk < tmax; tk++ {
			for r := 0; r < rows; r++ {
				var s, a float64
				for j, w := range c.w[r*k : (r+1)*k] {
					p := float64(w) * float64(xs[tk*k+j])
					s += p
					a += math.Abs(p)
				}
				c.ref[tk*rows+r], c.mag[tk*rows+r] = s, a
			}
		}
	}
	act, err := d.NewBufferF32("act", x)
	require.NoError(t, err)
	defer act.Release()
	// The matvec team size of this device (0), and 64 lanes a row as on
	// GPUs (Options.MatvecLanes), each whole and split.
	type variant struct {
		lanes int
		limit uint64
	}
	defer func() { rig.e.opt.MatvecLanes = 0 }()
	for _, v := range []variant{{0, 0}, {0, splitLimit}, {64, 0}, {64, splitLimit}} {
		rig.e.opt.MatvecLanes = v.lanes
		st, nArenas := rig.stage(t, cases, v.limit)
		name := fmt.Sprintf("%d arenas, %d dispatches, matvec lanes %d", nArenas, len(st.parts), v.lanes)
		worst := 0.0
		for _, T := range []int{1, 2, 3, 4, 5, 33} {
			rig.runStage(t, act, st, T, cases, tmax)
			got, err := d.ReadF32(act, 0, off)
			require.NoError(t, err)
			for _, c := range cases {
				worst = max(worst, checkStageOutput(t, name, c, got, T, tmax))
			}
		}
		t.Logf("%s: worst |y − ref| / Σ|w·x| = %.2g", name, worst)
		st.release()
	}
}

// stage places the cases' matrices with an arena planner (limit 0: the
// binding limit) and builds their stage as the engine does.
func (rig *kernelRig) stage(t testing.TB, cases []*stageCase, limit uint64) (stage, int) {
	t.Helper()
	if limit == 0 {
		limit = rig.d.MaxBindingSize() &^ 255
	}
	p := newArenaPlanner("test", limit)
	var jobs []job
	for _, c := range cases {
		parts, err := p.add(c.m)
		require.NoError(t, err)
		for _, pt := range parts {
			jobs = append(jobs, job{part: pt, xOff: c.xOff, xStride: c.m.Cols, yOff: c.yOff, yStride: c.m.Rows, epi: epiNone})
		}
	}
	require.NoError(t, p.upload(rig.d, &stager{budget: 1 << 30}))
	st, err := rig.e.buildStage(jobs)
	require.NoError(t, err)
	return st, len(p.arenas)
}

// runStage poisons the outputs with NaN and runs the stage for T tokens on
// the activations act.
func (rig *kernelRig) runStage(t testing.TB, act *gpu.Buffer, st stage, T int, cases []*stageCase, tmax int) {
	t.Helper()
	d := rig.d
	rig.e.act = act
	for _, c := range cases {
		nan := make([]float32, tmax*c.m.Rows)
		for i := range nan {
			nan[i] = float32(math.NaN())
		}
		require.NoError(t, d.WriteF32(act, uint64(4*c.yOff), nan))
	}
	r := d.NewRecorder()
	rig.e.recordStage(r, st, T)
	require.NoError(t, r.Submit())
}

// checkStageOutput compares the outputs of tokens < T with the reference
// and checks that token T's outputs were not written. It returns the worst
// |y − ref| / Σ|w·x|.
func checkStageOutput(t testing.TB, arenas string, c *stageCase, act []float32, T, tmax int) (worst float64) {
	t.Helper()
	rows := c.m.Rows
	y := act[c.yOff : c.yOff+tmax*rows]
	for tk := 0; tk < T; tk++ {
		for r := 0; r < rows; r++ {
			i := tk*rows + r
			diff := math.Abs(float64(y[i]) - c.ref[i])
			if !(diff <= 1e-5*c.mag[i]+1e-6) {
				t.Errorf("%s (%s), T=%d: first mismatch at row %d, token %d: GPU %g, reference %g (Σ|w·x| %g)",
					c.m.Name, arenas, T, r, tk, y[i], c.ref[i], c.mag[i])
				return math.Inf(1)
			}
			if c.mag[i] > 0 {
				worst = max(worst, diff/c.mag[i])
			}
		}
	}
	if T < tmax {
		for r := 0; r < rows; r++ {
			if v := y[T*rows+r]; !math.IsNaN(float64(v)) {
				t.Errorf("%s (%s), T=%d: token %d row %d was written (%g)", c.m.Name, arenas, T, T, r, v)
				return worst
			}
		}
	}
	return worst
}

// BenchmarkMatvecBandwidth measures each format's decode matvec (one
// token, a 2048×2048 matrix, the engine's stage and kernel choice for this
// device) as effective bandwidth: GPU weight bytes read per second. Each
// iteration is one submit and wait; GB/s is the mean, bestGB/s the fastest
// iteration (less disturbed by other work on a shared machine), and
// Gweights/s the fastest in weights. Run with
//
//	go test ./gpu -run '^$' -bench MatvecBandwidth -benchtime 20x
func BenchmarkMatvecBandwidth(b *testing.B) {
	rig := newKernelRig(b, false)
	d := rig.d
	const n = 2048
	rng := rand.New(rand.NewSource(3))
	x := make([]float32, 2*n)
	for i := range x {
		x[i] = float32(rng.Float64()*2 - 1)
	}
	act, err := d.NewBufferF32("act", x)
	require.NoError(b, err)
	rig.e.act = act
	for _, typ := range gpuTypes() {
		m := randomMatrix(rng, typ, n, n, 0)
		c := &stageCase{m: m, xOff: 0, yOff: n}
		b.Run(typ.String(), func(b *testing.B) {
			st, _ := rig.stage(b, []*stageCase{c}, 0)
			defer st.release()
			gpuBytes := float64(len(repackBytes(m, m.Rows)))
			once := func() time.Duration {
				start := time.Now()
				r := d.NewRecorder()
				rig.e.recordStage(r, st, 1)
				require.NoError(b, r.Submit())
				require.NoError(b, d.Wait())
				return time.Since(start)
			}
			once() // warm-up: pipelines, bind groups
			once()
			b.ResetTimer()
			var total, best time.Duration
			for i := 0; i < b.N; i++ {
				el := once()
				total += el
				if i == 0 || el < best {
					best = el
				}
			}
			b.ReportMetric(gpuBytes*float64(b.N)/total.Seconds()/1e9, "GB/s")
			b.ReportMetric(gpuBytes/best.Seconds()/1e9, "bestGB/s")
			b.ReportMetric(float64(n*n)/best.Seconds()/1e9, "Gweights/s")
		})
	}
}

// release frees the arenas of a stage built by a test (the engine's own
// arenas belong to its planners).
func (s stage) release() {
	for _, p := range s.parts {
		p.arena.buf.Release()
	}
}
