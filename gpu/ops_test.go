package gpu

import (
	"encoding/binary"
	"fmt"
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

// opsEngine is an Engine shell with compiled kernels and a layout, for
// running single kernels.
func opsEngine(t *testing.T, d *Device, c model.Config, tmax int, types ...gguf.Type) *Engine {
	t.Helper()
	e := &Engine{dev: d, cfg: c, lay: newActLayout(c, tmax)}
	embed := gguf.F32
	if len(types) > 0 {
		embed = types[0]
	}
	require.NoError(t, e.compile([]gguf.Type{gguf.F32}, embed))
	return e
}

func opsConfig(D, N, F, rw, ra, rv, rg, V int) model.Config {
	return model.Config{Layers: 2, Dim: D, HeadSize: N, Heads: D / N, FFN: F, RankW: rw, RankA: ra, RankV: rv, RankG: rg, Vocab: V, Eps: 1e-5}
}

func TestLnMixKernel(t *testing.T) {
	d := OpenTestDevice(t)
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
			seqs := []batchSeq{{slot: 1, first: 0, count: 3}, {slot: 0, first: 3, count: 2}}
			vecBuf, err := d.NewBufferF32("vec", vec)
			require.NoError(t, err)
			act, err := d.NewBuffer("act", uint64(4*e.lay.total))
			require.NoError(t, err)
			require.NoError(t, d.WriteF32(act, uint64(4*e.lay.x), x))
			st, err := d.NewBufferF32("state", state)
			require.NoError(t, err)
			tok, err := d.NewBufferU32("tok", tokenMeta(seqs, T))
			require.NoError(t, err)
			params, err := d.Params(e.lnParams(0, uint32(D), 6, uint32(2*D), shiftOff)...)
			require.NoError(t, err)
			rec := d.NewRecorder()
			rec.Dispatch(e.k.lnmix, []Binding{{Buf: vecBuf}, {Buf: act}, {Buf: st}, {Buf: tok}, {Buf: params}, {}}, T, 1, 1)
			require.NoError(t, rec.Submit())

			xa := make([][]float32, T)
			for i := range xa {
				xa[i] = make([]float32, D)
				cpuref.LayerNorm(xa[i], x[i*D:(i+1)*D], lnw, lnb, c.Eps)
			}
			gotXa, err := d.ReadF32(act, uint64(4*e.lay.xa), T*D)
			require.NoError(t, err)
			gotMix, err := d.ReadF32(act, uint64(4*e.lay.mix), 6*T*D) // mix_stride = tmax·D = T·D here
			require.NoError(t, err)
			gotState, err := d.ReadF32(st, 0, slots*SF)
			require.NoError(t, err)
			for _, s := range seqs {
				for i := s.first; i < s.first+s.count; i++ {
					requireClose(t, fmt.Sprintf("xa[%d]", i), gotXa[i*D:(i+1)*D], xa[i])
					prev := state[s.slot*SF+shiftOff : s.slot*SF+shiftOff+D]
					if i > s.first {
						prev = xa[i-1]
					}
					for m := 0; m < 6; m++ {
						want := make([]float32, D)
						cpuref.TokenShift(want, xa[i], prev, mu[m*D:(m+1)*D])
						o := m*T*D + i*D
						requireClose(t, fmt.Sprintf("mix[%d][%d]", m, i), gotMix[o:o+D], want)
					}
				}
				last := s.first + s.count - 1
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
	d := OpenTestDevice(t)
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
			l := e.lay
			slots, SF, LF := 2, c.StateFloats(), c.LayerStateFloats()
			layer := 1 // the layer whose state slice is used
			if tc.layer0 {
				layer = 0
			}
			// Two sequences: tokens 0-3 in slot 1, tokens 4-5 in slot 0.
			seqs := []batchSeq{{slot: 1, first: 0, count: 4}, {slot: 0, first: 4, count: 2}}

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
			require.NoError(t, p.upload(d))
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
			params, err := d.Params(e.wkvParamWords(layer, vecs, [4]matPart{parts[0], parts[1], parts[2], parts[3]})...)
			require.NoError(t, err)
			seqU, err := d.Uniform("seqs", U32Bytes(seqTable(seqs)))
			require.NoError(t, err)
			rec := d.NewRecorder()
			rec.Dispatch(e.k.wkv, []Binding{{Buf: p.arenas[0].buf}, {Buf: vecBuf}, {Buf: act}, {Buf: st}, {Buf: params}, {Buf: seqU}},
				uint32(c.Heads), uint32(len(seqs)), 1)
			require.NoError(t, rec.Submit())
			gotO, err := d.ReadF32(act, uint64(4*l.o), T*D)
			require.NoError(t, err)
			gotVf, err := d.ReadF32(act, uint64(4*l.vfirst), T*D)
			require.NoError(t, err)
			gotState, err := d.ReadF32(st, 0, slots*SF)
			require.NoError(t, err)

			// Reference: the cpuref operations, token by token per sequence.
			want := append([]float32(nil), state...)
			for _, s := range seqs {
				S := want[s.slot*SF+layer*LF+2*D : s.slot*SF+layer*LF+2*D+D*N]
				for i := s.first; i < s.first+s.count; i++ {
					h := hid[i*l.hidStride : (i+1)*l.hidStride]
					hw, ha, hv, hg := h[:c.RankW], h[c.RankW:c.RankW+c.RankA], h[c.RankW+c.RankA:c.RankW+c.RankA+c.RankV], h[l.hg-l.hid:l.hg-l.hid+c.RankG]
					up := func(m *model.Matrix, x []float32) []float32 {
						y := make([]float32, D)
						require.NoError(t, cpuref.MatVec(m, x, y))
						return y
					}
					decay := up(W2, hw)
					cpuref.Decay(decay, w0, decay, model.DecayScale)
					a := up(A2, ha)
					cpuref.SigmoidOfBiasSum(a, a0, a)
					g := up(G2, hg)
					v := append([]float32(nil), vr[i*D:(i+1)*D]...)
					if tc.layer0 {
						requireClose(t, fmt.Sprintf("v_first[%d]", i), gotVf[i*D:(i+1)*D], v)
					} else {
						gate := up(V2, hv)
						cpuref.SigmoidOfBiasSum(gate, v0, gate)
						cpuref.ValueResidual(v, vf[i*D:(i+1)*D], gate)
					}
					k := append([]float32(nil), kr[i*D:(i+1)*D]...)
					kh := make([]float32, D)
					cpuref.Mul(kh, k, kk)
					cpuref.L2NormGroups(kh, kh, c.Heads, model.L2NormFloor)
					cpuref.KeyAdjust(k, a, ka)
					alpha, beta := make([]float32, D), make([]float32, D)
					for j := range kh {
						alpha[j], beta[j] = -kh[j], kh[j]*a[j]
					}
					y, o := make([]float32, D), make([]float32, D)
					cpuref.WKV7(S, rr[i*D:(i+1)*D], decay, k, v, alpha, beta, y, c.Heads)
					cpuref.GroupNorm(o, y, lnxw, lnxb, c.Heads, model.GroupNormEps)
					cpuref.Bonus(o, rr[i*D:(i+1)*D], k, rk, v, c.Heads)
					cpuref.Mul(o, o, g)
					requireClose(t, fmt.Sprintf("o[%d]", i), gotO[i*D:(i+1)*D], o)
				}
			}
			requireClose(t, "state", gotState, want)
		})
	}
}

func TestEmbedAndArgmaxKernels(t *testing.T) {
	d := OpenTestDevice(t)
	r := rand.New(rand.NewPCG(7, 7))
	const D, V, T = 96, 300, 3
	c := opsConfig(D, 32, 4*D, 32, 32, 32, 32, V)
	e := opsEngine(t, d, c, T, gguf.F16)
	l := e.lay
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
	require.NoError(t, p.upload(d))
	lnw, lnb := randVec(r, D, 1), randVec(r, D, 0.3)
	gvec, err := d.NewBufferF32("gvec", append(append([]float32{}, lnw...), lnb...))
	require.NoError(t, err)
	act, err := d.NewBuffer("act", uint64(4*l.total))
	require.NoError(t, err)
	ids := []uint32{0, 299, uint32(parts[1].rowLo)}
	idsBuf, err := d.NewBuffer("ids", uint64(4*l.idsTotal))
	require.NoError(t, err)
	require.NoError(t, d.WriteU32(idsBuf, 0, ids))
	rec := d.NewRecorder()
	for _, part := range parts {
		pp, err := d.Params(uint32(D), math.Float32bits(c.Eps), uint32(gguf.F16), part.q, part.s,
			uint32(part.rowLo), uint32(part.rowLo+part.rows), uint32(l.x), 0, uint32(D), 0, uint32(V), 0, 0, 0xffffffff, 0)
		require.NoError(t, err)
		rec.Dispatch(e.k.embed, []Binding{{Buf: part.arena.buf}, {Buf: gvec}, {Buf: act}, {Buf: idsBuf}, {Buf: pp}}, T, 1, 1)
	}
	require.NoError(t, rec.Submit())
	got, err := d.ReadF32(act, uint64(4*l.x), T*D)
	require.NoError(t, err)
	for i, id := range ids {
		row := make([]float32, D)
		require.NoError(t, gguf.DequantizeRow(gguf.F16, raw[int(id)*2*D:(int(id)+1)*2*D], row))
		cpuref.LayerNorm(row, row, lnw, lnb, c.Eps)
		requireClose(t, fmt.Sprintf("embedding of token %d", id), got[i*D:(i+1)*D], row)
	}

	// Argmax over T rows of logits with ties (lowest index wins) and NaN.
	logits := randVec(r, T*V, 5)
	logits[0*V+17], logits[0*V+250] = 9, 9
	logits[1*V+3] = float32(math.NaN())
	logits[1*V+200] = 7
	for i := range logits[2*V : 3*V] {
		logits[2*V+i] = -1
	}
	require.NoError(t, d.WriteF32(act, uint64(4*l.logits), logits))
	e.act, e.ids = act, idsBuf
	require.NoError(t, e.setArgmax(uint32(l.idsNext), true))
	require.NoError(t, d.WriteU32(idsBuf, uint64(4*l.idsCount), []uint32{0}))
	rec = d.NewRecorder()
	rec.Dispatch(e.k.argmax, []Binding{{}, {}, {Buf: act}, {Buf: idsBuf}, {Buf: e.argmaxParams}}, T, 1, 1)
	require.NoError(t, rec.Submit())
	next, err := d.ReadU32(idsBuf, uint64(4*l.idsNext), T)
	require.NoError(t, err)
	for row := 0; row < T; row++ {
		require.Equal(t, uint32(model.Argmax(logits[row*V:(row+1)*V])), next[row], "row %d", row)
	}
	hist, err := d.ReadU32(idsBuf, uint64(4*l.idsCount), 1)
	require.NoError(t, err)
	require.Equal(t, uint32(T), hist[0], "history count")
}
