package engine

import (
	"encoding/binary"
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/internal/gputest"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/cpuref"
	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// These tests run single kernels (lnmix, ln_rows, wkv, embed, argmax) on
// random data and compare them with the cpuref operations they implement.
// Tolerances: float32 kernels against float64-accumulating references, so
// |got − want| ≤ 1e-5 + 1e-4·|want| (reductions over at most a few hundred
// terms of magnitude ≤ 10).

func randVec(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (r.Float32()*2 - 1) * scale
	}
	return v
}

func requireClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	require.Len(t, got, len(want), what)
	if i := numtest.FirstMismatch(got, want, 1e-5, 1e-4); i >= 0 {
		t.Fatalf("%s: index %d: got %.9g, want %.9g", what, i, got[i], want[i])
	}
}

// opsEngine is an Engine shell with compiled kernels and a layout (four
// state slots), for running single kernels.
func opsEngine(t *testing.T, d *gpu.Device, c model.Config, tmax int, types ...gguf.Type) *Engine {
	t.Helper()
	ml := &modelLayout{cfg: c, act: newActLayout(c, tmax), ids: newIDsLayout(tmax, 4),
		pass: newPassLayout(tmax, uint64(d.Limits().MinStorageBufferOffsetAlignment)), slots: 4}
	e := &Engine{dev: d, cfg: c, ml: ml}
	embed := gguf.F32
	if len(types) > 0 {
		embed = types[0]
	}
	require.NoError(t, e.compile([]gguf.Type{gguf.F32}, embed))
	return e
}

// testSeq is a sequence of a hand-made pass: its slot and its host tokens.
type testSeq struct {
	slot   int
	tokens []int
}

// passFor builds the tables of one pass holding seqs (whole, in order, each
// asking for want) with the engine's own fill, and uploads them as the
// engine's pass buffer.
func passFor(t *testing.T, e *Engine, seqs []testSeq, want model.Want) *pass {
	t.Helper()
	var in []stepSeq
	for _, q := range seqs {
		in = append(in, stepSeq{s: &Session{e: e, slot: q.slot}, tokens: q.tokens, want: want})
	}
	passes := planPasses(in, e.ml.act.tmax)
	require.Len(t, passes, 1)
	e.fill(passes[0], in)
	buf, err := e.dev.NewBuffer("pass tables", e.ml.pass.total)
	require.NoError(t, err)
	t.Cleanup(buf.Release)
	require.NoError(t, e.dev.Write(buf, 0, passes[0].tables))
	e.pass = buf
	return passes[0]
}

// zeros returns n token ids (the ops tests need only the sequence shapes).
func zeros(n int) []int { return make([]int, n) }

func opsConfig(D, N, F, rw, ra, rv, rg, V int) model.Config {
	return model.Config{Layers: 2, Dim: D, HeadSize: N, Heads: D / N, FFN: F, RankW: rw, RankA: ra, RankV: rv, RankG: rg, Vocab: V, Eps: 1e-5}
}

func TestLnMixKernel(t *testing.T) {
	d := gputest.OpenDevice(t)
	for _, D := range []int{64, 200, 768} {
		t.Run(fmt.Sprint(D), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(D), 1))
			c := opsConfig(D, 8, 4*D, 8, 8, 8, 8, 16)
			const T = 5
			e := opsEngine(t, d, c, T)
			slots, SF := 2, c.StateFloats()
			x := randVec(r, T*D, 3)
			state := randVec(r, slots*SF, 1)
			lnw, lnb := randVec(r, D, 1), randVec(r, D, 0.2)
			mu := randVec(r, 6*D, 0.5)
			vec := append(append(append([]float32{}, lnw...), lnb...), mu...)
			shiftOff := 1*c.LayerStateFloats() + D // layer 1's ffn shift, any offset works
			// Tokens 0-2 belong to the sequence in slot 1, tokens 3-4 to slot 0.
			seqs := []testSeq{{1, zeros(3)}, {0, zeros(2)}}
			passFor(t, e, seqs, model.WantNothing)
			l := e.ml.act
			vecBuf, err := d.NewBufferF32("vec", vec)
			require.NoError(t, err)
			act, err := d.NewBuffer("act", uint64(4*l.total))
			require.NoError(t, err)
			require.NoError(t, d.WriteF32(act, uint64(4*l.x), x))
			st, err := d.NewBufferF32("state", state)
			require.NoError(t, err)
			e.act, e.state = act, st
			params, err := d.ParamsOf(e.lnParams(0, uint32(D), 6, uint32(2*D), shiftOff))
			require.NoError(t, err)
			rec := d.NewRecorder()
			rec.Dispatch(e.k.lnmix, e.lnBindings(vecBuf, params), T, 1, 1)
			require.NoError(t, rec.Submit())

			xa := make([][]float32, T)
			for i := range xa {
				xa[i] = make([]float32, D)
				cpuref.LayerNorm(xa[i], x[i*D:(i+1)*D], lnw, lnb, c.Eps)
			}
			gotXa, err := d.ReadF32(act, uint64(4*l.xa), T*D)
			require.NoError(t, err)
			gotMix, err := d.ReadF32(act, uint64(4*l.mix), 6*T*D) // mix_stride = tmax·D = T·D here
			require.NoError(t, err)
			gotState, err := d.ReadF32(st, 0, slots*SF)
			require.NoError(t, err)
			first := 0
			for _, s := range seqs {
				for i := first; i < first+len(s.tokens); i++ {
					requireClose(t, fmt.Sprintf("xa[%d]", i), gotXa[i*D:(i+1)*D], xa[i])
					prev := state[s.slot*SF+shiftOff : s.slot*SF+shiftOff+D]
					if i > first {
						prev = xa[i-1]
					}
					for m := 0; m < 6; m++ {
						want := make([]float32, D)
						cpuref.TokenShift(want, xa[i], prev, mu[m*D:(m+1)*D])
						o := m*T*D + i*D
						requireClose(t, fmt.Sprintf("mix[%d][%d]", m, i), gotMix[o:o+D], want)
					}
				}
				last := first + len(s.tokens) - 1
				first += len(s.tokens)
				o := s.slot*SF + shiftOff
				requireClose(t, fmt.Sprintf("new shift of slot %d", s.slot), gotState[o:o+D], xa[last])
			}
			// Nothing else in the state changed.
			for i := range state {
				if (i%SF < shiftOff || i%SF >= shiftOff+D) && gotState[i] != state[i] {
					t.Fatalf("state[%d] changed: %g -> %g", i, state[i], gotState[i])
				}
			}
		})
	}
}

// f32Matrix wraps float32 values as a stored F32 matrix.
func f32Matrix(name string, rows, cols int, v []float32) *model.Matrix {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return &model.Matrix{Name: name, Type: gguf.F32, Rows: rows, Cols: cols, RowBytes: 4 * cols, Data: b}
}

func TestWKVKernel(t *testing.T) {
	d := gputest.OpenDevice(t)
	for _, tc := range []struct {
		D, N   int
		layer0 bool
	}{{128, 64, false}, {128, 64, true}, {96, 32, false}} {
		t.Run(fmt.Sprintf("D%d_N%d_layer0=%v", tc.D, tc.N, tc.layer0), func(t *testing.T) {
			D, N := tc.D, tc.N
			r := rand.New(rand.NewPCG(uint64(D*N), 2))
			c := opsConfig(D, N, 4*D, 32, 32, 64, 96, 16)
			const T = 6
			e := opsEngine(t, d, c, T)
			l := e.ml.act
			slots, SF, LF := 2, c.StateFloats(), c.LayerStateFloats()
			layer := 1 // the layer whose state slice is used
			if tc.layer0 {
				layer = 0
			}
			// Two sequences: tokens 0-3 in slot 1, tokens 4-5 in slot 0.
			seqs := []testSeq{{1, zeros(4)}, {0, zeros(2)}}
			passFor(t, e, seqs, model.WantNothing)

			W2 := f32Matrix("w2", D, c.RankW, randVec(r, D*c.RankW, 0.3))
			A2 := f32Matrix("a2", D, c.RankA, randVec(r, D*c.RankA, 0.3))
			V2 := f32Matrix("v2", D, c.RankV, randVec(r, D*c.RankV, 0.3))
			G2 := f32Matrix("g2", D, c.RankG, randVec(r, D*c.RankG, 0.3))
			p := newArenaPlanner("up", d.MaxBindingSize())
			var parts []matPart
			for _, m := range []*model.Matrix{W2, A2, V2, G2} {
				ps, err := p.add(m)
				require.NoError(t, err)
				parts = append(parts, ps...)
			}
			require.NoError(t, p.upload(d, &stager{budget: 1 << 30}))
			defer p.arenas[0].buf.Release()

			w0, a0, v0 := randVec(r, D, 1), randVec(r, D, 1), randVec(r, D, 1)
			kk, ka, rk := randVec(r, D, 1.5), randVec(r, D, 1.5), randVec(r, D, 0.5)
			lnxw, lnxb := randVec(r, D, 1), randVec(r, D, 0.2)
			var vb vecBuilder
			offs := []uint32{vb.add(w0), vb.add(a0), vb.add(v0), vb.add(kk), vb.add(ka), vb.add(rk), vb.add(lnxw), vb.add(lnxb)}
			vecBuf, err := d.NewBufferF32("vec", vb.data)
			require.NoError(t, err)

			actData := make([]float32, l.total)
			fill := func(off, n int, scale float32) []float32 {
				v := randVec(r, n, scale)
				copy(actData[off:], v)
				return v
			}
			hid := fill(l.hid, T*l.hidStride, 1)
			rr, kr, vr, vf := fill(l.r, T*D, 1), fill(l.k, T*D, 1), fill(l.v, T*D, 1), fill(l.vfirst, T*D, 1)
			act, err := d.NewBufferF32("act", actData)
			require.NoError(t, err)
			state := randVec(r, slots*SF, 0.5)
			st, err := d.NewBufferF32("state", state)
			require.NoError(t, err)

			var vecs [8]uint32
			copy(vecs[:], offs)
			params, err := d.ParamsOf(e.wkvParamsOf(layer, vecs, [4]matPart{parts[0], parts[1], parts[2], parts[3]}))
			require.NoError(t, err)
			rec := d.NewRecorder()
			pl := e.ml.pass
			rec.Dispatch(e.k.wkv, []gpu.Binding{{Buf: p.arenas[0].buf}, {Buf: vecBuf}, {Buf: act}, {Buf: st}, {Buf: params}, e.passBinding(pl.seqs, pl.seqsN)},
				uint32(c.Heads), uint32(len(seqs)), 1)
			require.NoError(t, rec.Submit())
			gotO, err := d.ReadF32(act, uint64(4*l.o), T*D)
			require.NoError(t, err)
			gotVf, err := d.ReadF32(act, uint64(4*l.vfirst), T*D)
			require.NoError(t, err)
			gotState, err := d.ReadF32(st, 0, slots*SF)
			require.NoError(t, err)

			// Reference: cpuref.WKVToken, token by token per sequence, on a
			// layer holding the test's matrices and vectors.
			L := &model.Layer{W2: *W2, A2: *A2, V2: *V2, G2: *G2, W0: w0, A0: a0, V0: v0, KK: kk, KA: ka, RK: rk, LnXW: lnxw, LnXB: lnxb}
			want := append([]float32(nil), state...)
			first := 0
			for _, s := range seqs {
				S := want[s.slot*SF+layer*LF+2*D : s.slot*SF+layer*LF+2*D+D*N]
				for i := first; i < first+len(s.tokens); i++ {
					h := hid[i*l.hidStride : (i+1)*l.hidStride]
					hw, ha, hv, hg := h[:c.RankW], h[c.RankW:c.RankW+c.RankA], h[c.RankW+c.RankA:c.RankW+c.RankA+c.RankV], h[l.hg-l.hid:l.hg-l.hid+c.RankG]
					row := func(v []float32) []float32 { return append([]float32(nil), v[i*D:(i+1)*D]...) }
					k, v, vFirst, o := row(kr), row(vr), row(vf), make([]float32, D)
					require.NoError(t, cpuref.WKVToken(c, L, layer, S, rr[i*D:(i+1)*D], k, v, vFirst, hw, ha, hv, hg, o))
					if tc.layer0 {
						requireClose(t, fmt.Sprintf("v_first[%d]", i), gotVf[i*D:(i+1)*D], vFirst)
					}
					requireClose(t, fmt.Sprintf("o[%d]", i), gotO[i*D:(i+1)*D], o)
				}
				first += len(s.tokens)
			}
			requireClose(t, "state", gotState, want)
		})
	}
}

func TestEmbedAndArgmaxKernels(t *testing.T) {
	d := gputest.OpenDevice(t)
	r := rand.New(rand.NewPCG(7, 7))
	const D, V = 96, 300
	c := opsConfig(D, 32, 4*D, 32, 32, 32, 32, V)
	e := opsEngine(t, d, c, 4, gguf.F16)
	l, il := e.ml.act, e.ml.ids
	// An F16 embedding split into two arenas.
	vals := randVec(r, V*D, 2)
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(raw[2*i:], gguf.F32ToF16(v))
	}
	E := &model.Matrix{Name: "token_embd.weight", Type: gguf.F16, Rows: V, Cols: D, RowBytes: 2 * D, Data: raw}
	p := newArenaPlanner("embd", uint64(2*D*V/2+64))
	parts, err := p.add(E)
	require.NoError(t, err)
	require.Len(t, parts, 2)
	require.NoError(t, p.upload(d, &stager{budget: 1 << 30}))
	lnw, lnb := randVec(r, D, 1), randVec(r, D, 0.3)
	gvec, err := d.NewBufferF32("gvec", append(append([]float32{}, lnw...), lnb...))
	require.NoError(t, err)
	act, err := d.NewBuffer("act", uint64(4*l.total))
	require.NoError(t, err)
	idsBuf, err := d.NewBuffer("ids", uint64(4*il.total))
	require.NoError(t, err)
	e.act, e.ids, e.gvec = act, idsBuf, gvec
	// Tokens 0 and 299 come from the host (slot 0); the third is the token
	// chosen earlier for slot 1, already on the device.
	chosen := parts[1].rowLo
	require.NoError(t, d.WriteU32(idsBuf, uint64(4*(il.chosen+1)), []uint32{uint32(chosen)}))
	in := []stepSeq{{s: &Session{e: e, slot: 0}, tokens: []int{0, 299}}, {s: &Session{e: e, slot: 1}, cont: true}}
	ps := planPasses(in, l.tmax)
	require.Len(t, ps, 1)
	e.fill(ps[0], in)
	passBuf, err := d.NewBuffer("pass", e.ml.pass.total)
	require.NoError(t, err)
	require.NoError(t, d.Write(passBuf, 0, ps[0].tables))
	e.pass = passBuf
	for _, part := range parts {
		pp, err := d.ParamsOf(embedParams{D: D, Eps: c.Eps, Fmt: uint32(gguf.F16), Q: part.q, S: part.s,
			RowLo: uint32(part.rowLo), RowHi: uint32(part.rowLo + part.rows), XOff: uint32(l.x), LnW: 0, LnB: D})
		require.NoError(t, err)
		e.embed = append(e.embed, embedPart{arena: part.arena, params: pp})
	}
	rec := d.NewRecorder()
	e.recordEmbed(rec, 3)
	require.NoError(t, rec.Submit())
	got, err := d.ReadF32(act, uint64(4*l.x), 3*D)
	require.NoError(t, err)
	for i, id := range []int{0, 299, chosen} {
		row := make([]float32, D)
		require.NoError(t, gguf.DequantizeRow(gguf.F16, raw[id*2*D:(id+1)*2*D], row))
		cpuref.LayerNorm(row, row, lnw, lnb, c.Eps)
		requireClose(t, fmt.Sprintf("embedding of token %d", id), got[i*D:(i+1)*D], row)
	}

	// Argmax over 4 rows (sequences in slots 3, 0, 2, 1) of logits with
	// ties (lowest index wins), NaN, a constant row, and Inf: each row's
	// id and non-finite count, and the id as its slot's chosen token.
	logits := randVec(r, 4*V, 5)
	logits[0*V+17], logits[0*V+250] = 9, 9
	logits[1*V+3] = float32(math.NaN())
	logits[1*V+200] = 7
	for i := range logits[2*V : 3*V] {
		logits[2*V+i] = -1
	}
	logits[3*V+5], logits[3*V+6] = float32(math.Inf(1)), float32(math.Inf(-1))
	require.NoError(t, d.WriteF32(act, uint64(4*l.logits), logits))
	slots := []int{3, 0, 2, 1}
	var seqs []testSeq
	for _, s := range slots {
		seqs = append(seqs, testSeq{s, zeros(1)})
	}
	pa := passFor(t, e, seqs, model.WantToken)
	require.Len(t, pa.argmaxRows, 4)
	e.argmax, err = d.ParamsOf(argmaxParams{V: V, Logits: uint32(l.logits), Out: uint32(il.out), Chosen: uint32(il.chosen)})
	require.NoError(t, err)
	rec = d.NewRecorder()
	rec.Dispatch(e.k.argmax, []gpu.Binding{{}, {}, {Buf: act}, {Buf: idsBuf}, {}, {}, e.passBinding(e.ml.pass.head, e.ml.pass.headN), {Buf: e.argmax}}, 4, 1, 1)
	require.NoError(t, rec.Submit())
	out, err := d.ReadU32(idsBuf, uint64(4*il.out), 8)
	require.NoError(t, err)
	chosenIDs, err := d.ReadU32(idsBuf, uint64(4*il.chosen), 4)
	require.NoError(t, err)
	for row := 0; row < 4; row++ {
		lg := logits[row*V : (row+1)*V]
		want := uint32(model.Argmax(lg))
		bad := 0
		for _, x := range lg {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				bad++
			}
		}
		require.Equal(t, want, out[2*row], "row %d id", row)
		require.Equal(t, uint32(bad), out[2*row+1], "row %d non-finite count", row)
		require.Equal(t, want, chosenIDs[slots[row]], "row %d: chosen token of slot %d", row, slots[row])
	}
}
