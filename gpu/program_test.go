package gpu

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProgram records two dispatches (sum = a + b, then out = sum·2) as a
// Program, appends it twice to one recording, and checks the results; the
// program's bind groups survive the cache collections that drop every
// unpinned group, and a released program cannot be appended.
func TestProgram(t *testing.T) {
	d := openTestDevice(t)
	add := elementwise(t, d, "add", 64)
	scale := elementwise(t, d, "scale", 64)
	const n = 100
	a, err := d.NewBufferF32("a", make([]float32, n))
	require.NoError(t, err)
	b, err := d.NewBufferF32("b", make([]float32, n))
	require.NoError(t, err)
	sum, err := d.NewBuffer("sum", 4*n)
	require.NoError(t, err)
	out, err := d.NewBuffer("out", 4*n)
	require.NoError(t, err)
	pAdd, err := d.Params(n, 0)
	require.NoError(t, err)
	pScale, err := d.Params(n, math.Float32bits(2))
	require.NoError(t, err)

	r := d.NewRecorder()
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: sum}, {Buf: pAdd}}, 2, 1, 1)
	r.Dispatch(scale, []Binding{{Buf: sum}, {}, {Buf: out}, {Buf: pScale}}, 2, 1, 1)
	prog, err := r.Program()
	require.NoError(t, err)
	require.Equal(t, 2, prog.Dispatches())
	require.Zero(t, r.Len(), "Program resets the recorder")

	// Fill the cache past its bound, then collect: pinned groups stay.
	big, err := d.NewBuffer("big", 256*(bindGroupCacheMax+1)+4*n)
	require.NoError(t, err)
	for i := 0; i <= bindGroupCacheMax; i++ {
		rr := d.NewRecorder()
		rr.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: big, Offset: uint64(256 * i), Size: 4 * n}, {Buf: pAdd}}, 1, 1, 1)
		rr.Reset()
	}
	// Each Reset unpins the recording, and the cache collects itself once
	// it has outgrown its bound: only a few groups are left, the program's
	// among them (it runs below).
	d.mu.Lock()
	left := d.groups.len()
	d.mu.Unlock()
	require.Less(t, left, 16, "the cache collected itself")

	av, bv := make([]float32, n), make([]float32, n)
	for i := range av {
		av[i], bv[i] = float32(i), float32(3*i)
	}
	require.NoError(t, d.WriteF32(a, 0, av))
	require.NoError(t, d.WriteF32(b, 0, bv))
	r.Append(prog)
	r.Append(prog)
	require.Equal(t, 4, r.Dispatches())
	require.NoError(t, r.Submit())
	got, err := d.ReadF32(out, 0, n)
	require.NoError(t, err)
	for i := range got {
		require.Equal(t, 2*(av[i]+bv[i]), got[i], "element %d", i)
	}
	prog.Release()
	r.Append(prog)
	require.ErrorContains(t, r.Err(), "released")
}
