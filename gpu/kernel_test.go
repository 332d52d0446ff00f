package gpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// elementwise compiles an entry of shaders/elementwise.wgsl with workgroup size wg.
func elementwise(t testing.TB, d *Device, entry string, wg int) *Kernel {
	t.Helper()
	src, err := shaders.Source("elementwise.wgsl", map[string]string{"WG": fmt.Sprint(wg)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel(entry, src, entry)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randF32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 100)
	}
	return v
}

func TestElementwiseExactOnOddSizes(t *testing.T) {
	d := openTestDevice(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, wg := range []int{256, 8} { // WG=8 makes 1000003 elements fold into 2-D
		add := elementwise(t, d, "add", wg)
		scale := elementwise(t, d, "scale", wg)
		for _, n := range []int{1, 7, 1000003} {
			a, b := randF32(rng, n), randF32(rng, n)
			const s = float32(-0.37)
			ab, err := d.NewBufferF32("a", a)
			if err != nil {
				t.Fatal(err)
			}
			bb, _ := d.NewBufferF32("b", b)
			sum, _ := d.NewBuffer("sum", uint64(4*n))
			scaled, _ := d.NewBuffer("scaled", uint64(4*n))
			p, err := d.Params(uint32(n), math.Float32bits(s))
			if err != nil {
				t.Fatal(err)
			}
			x, y, z := d.Grid(uint32(n), uint32(wg))
			if wg == 8 && n == 1000003 && y < 2 {
				t.Fatalf("expected a folded grid, got %dx%dx%d", x, y, z)
			}
			r := d.NewRecorder()
			r.Dispatch(add, []Binding{{Buf: ab}, {Buf: bb}, {Buf: sum}, {Buf: p}}, x, y, z)
			r.Dispatch(scale, []Binding{{Buf: ab}, {}, {Buf: scaled}, {Buf: p}}, x, y, z)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			gotSum, err := d.ReadF32(sum, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			gotScaled, err := d.ReadF32(scaled, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := 0; i < n; i++ {
				if gotSum[i] != a[i]+b[i] || gotScaled[i] != a[i]*s {
					if bad < 5 {
						t.Errorf("WG=%d n=%d i=%d: add %v want %v, scale %v want %v", wg, n, i, gotSum[i], a[i]+b[i], gotScaled[i], a[i]*s)
					}
					bad++
				}
			}
			if bad > 0 {
				t.Fatalf("WG=%d n=%d: %d wrong elements", wg, n, bad)
			}
			for _, buf := range []*Buffer{ab, bb, sum, scaled} {
				buf.Release()
			}
		}
	}
}

func TestBindingAboveLimitIsRefusedAndSubRangesWork(t *testing.T) {
	d := openTestDevice(t)
	lim := d.MaxBindingSize()
	if lim > 512<<20 {
		// CI runs on lavapipe (a 128 MiB limit); elsewhere skipping is fine.
		testenv.Missing(t, testenv.CI(), "binding limit %s: too large to exceed cheaply in a test", fmtBytes(lim))
	}
	const tail = 1024 // floats after the limit
	big, err := d.NewBuffer("big", lim+4*tail)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Release()
	out, _ := d.NewBuffer("out", 4*tail)
	scale := elementwise(t, d, "scale", 64)
	p, _ := d.Params(tail, math.Float32bits(2))

	r := d.NewRecorder()
	r.Dispatch(scale, []Binding{{Buf: big}, {}, {Buf: out}, {Buf: p}}, 16, 1, 1)
	err = r.Submit()
	if err == nil || !strings.Contains(err.Error(), "maxStorageBufferBindingSize") || !strings.Contains(err.Error(), fmtBytes(lim)) ||
		!strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), `kernel "scale"`) {
		t.Fatalf("whole-buffer binding above the limit: got %v", err)
	}
	t.Log(err)

	// The part beyond the limit is reachable through an offset binding.
	want := make([]float32, tail)
	for i := range want {
		want[i] = float32(i) + 0.5
	}
	if err := d.WriteF32(big, lim, want); err != nil {
		t.Fatal(err)
	}
	r.Dispatch(scale, []Binding{{Buf: big, Offset: lim, Size: 4 * tail}, {}, {Buf: out}, {Buf: p}}, 16, 1, 1)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadF32(out, 0, tail)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != 2*want[i] {
			t.Fatalf("element %d: %v want %v", i, got[i], 2*want[i])
		}
	}
}

func TestValidationErrorsBecomeGoErrors(t *testing.T) {
	d := openTestDevice(t)
	add := elementwise(t, d, "add", 64)
	a, _ := d.NewBufferF32("a", make([]float32, 16))
	b, _ := d.NewBufferF32("b", make([]float32, 16))
	out, _ := d.NewBuffer("out", 64)
	p, _ := d.Params(16, 0)

	check := func(name string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		var ge *Error
		if !errors.As(err, &ge) {
			t.Errorf("%s: %T is not *gpu.Error: %v", name, err, err)
		}
		for _, s := range parts {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error lacks %q:\n%v", name, s, err)
			}
		}
		t.Logf("%s:\n%v", name, err)
	}

	// A binding range larger than its buffer: wgpu refuses the bind group.
	r := d.NewRecorder()
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b, Size: 4096}, {Buf: out}, {Buf: p}}, 1, 1, 1)
	check("oversized binding", r.Err(), `dispatch #0 of 1 kernel "add"`, `1="b"[0:+4096]`, "4096")
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: out}, {Buf: p}}, 1, 1, 1) // ignored: sticky
	if r.Len() != 0 {
		t.Errorf("recorder kept %d ops after an error", r.Len())
	}
	check("oversized binding at Submit", r.Submit(), `kernel "add"`)

	// A binding the entry point uses is missing.
	r.Dispatch(add, []Binding{{Buf: a}, {}, {Buf: out}, {Buf: p}}, 1, 1, 1)
	check("missing binding", r.Submit(), `kernel "add"`, `0="a"`)

	// In-place add binds "a" read-only and read-write in one dispatch: wgpu
	// reports the usage conflict when the pass ends, and Submit locates it.
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: out}, {Buf: p}}, 1, 1, 1)
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: a}, {Buf: p}}, 1, 1, 1)
	check("usage conflict", r.Submit(), `dispatch #1 of 2 kernel "add"`, `2="a"`, "usage")

	// Too many workgroups in one dimension.
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: out}, {Buf: p}}, 70000, 1, 1)
	check("workgroup count", r.Submit(), "70000x1x1", "maxComputeWorkgroupsPerDimension", "Grid")

	// A released buffer.
	gone, _ := d.NewBuffer("gone", 64)
	gone.Release()
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: gone}, {Buf: p}}, 1, 1, 1)
	check("released buffer", r.Submit(), `"gone"`, "released")

	// Buffer released between Dispatch and Submit.
	late, _ := d.NewBuffer("late", 64)
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: late}, {Buf: p}}, 1, 1, 1)
	late.Release()
	check("released before submit", r.Submit(), `"late"`, "released before Submit")

	// Copy errors: misaligned size.
	r.Copy(a, 0, out, 0, 3)
	check("copy", r.Submit(), "copy", `"a"`, `"out"`)

	// The device still works afterwards.
	if err := d.WriteF32(a, 0, []float32{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteF32(b, 0, []float32{10, 20}); err != nil {
		t.Fatal(err)
	}
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: b}, {Buf: out}, {Buf: p}}, 1, 1, 1)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadF32(out, 0, 2)
	if err != nil || got[0] != 11 || got[1] != 22 {
		t.Fatalf("after errors: %v, %v", got, err)
	}
}

func TestCompileErrors(t *testing.T) {
	d := openTestDevice(t)
	_, err := d.Kernel("broken", "fn main( { }", "main")
	if err == nil || !strings.Contains(err.Error(), `compile kernel "broken"`) || !strings.Contains(err.Error(), "expected identifier") {
		t.Fatalf("parse error: %v", err)
	}
	t.Log(err)
	src := "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n" +
		"@compute @workgroup_size(1) fn main() { x[0] = 1u; }\n"
	_, err = d.Kernel("typed", src, "main")
	if err == nil || !strings.Contains(err.Error(), `kernel "typed"`) {
		t.Fatalf("type error: %v", err)
	}
	t.Log(err)
	_, err = d.Kernel("noentry", strings.Replace(src, "1u", "1.0", 1), "nope")
	if err == nil || !strings.Contains(err.Error(), `kernel "noentry"`) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing entry point: %v", err)
	}
	t.Log(err)
}

func TestPipelineAndBindGroupCaches(t *testing.T) {
	d := openTestDevice(t)
	k1 := elementwise(t, d, "add", 64)
	k2 := elementwise(t, d, "add", 64)
	k3 := elementwise(t, d, "scale", 64)
	if k1.p != k2.p || k1.p == k3.p {
		t.Error("pipeline cache keyed wrongly")
	}
	if len(d.modules) != 1 {
		t.Errorf("%d shader modules for one source", len(d.modules))
	}
	a, _ := d.NewBuffer("a", 64)
	b, _ := d.NewBuffer("b", 64)
	out, _ := d.NewBuffer("out", 64)
	p, _ := d.Params(16, 0)
	if p2, _ := d.Params(16, 0); p2 != p {
		t.Error("Params not shared by content")
	}
	for step := 0; step < 3; step++ {
		r := d.NewRecorder()
		r.Dispatch(k1, []Binding{{Buf: a}, {Buf: b}, {Buf: out}, {Buf: p}}, 1, 1, 1)
		r.Dispatch(k2, []Binding{{Buf: a}, {Buf: b}, {Buf: out}, {Buf: p}}, 1, 1, 1)
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.groups.len(); n != 1 {
		t.Errorf("bind group cache holds %d entries, want 1", n)
	}
	if d.DispatchCount() != 6 {
		t.Errorf("dispatch count %d", d.DispatchCount())
	}
	b.Release()
	if n := d.groups.len(); n != 0 {
		t.Errorf("released buffer left %d cache entries", n)
	}
	if err := d.Write(p, 0, []byte{1, 2, 3, 4}); err == nil {
		t.Error("Params buffer accepted a write")
	}
	p.Release() // ignored
	if _, err := d.Read(p, 0, 8); err != nil {
		t.Errorf("Params buffer unusable after Release: %v", err)
	}
}

func TestBuffersReadWriteAndAccounting(t *testing.T) {
	d := openTestDevice(t)
	base := d.AllocatedBytes()
	odd, err := d.NewBufferFrom("odd", []byte{1, 2, 3, 4, 5, 6, 7})
	if err != nil {
		t.Fatal(err)
	}
	if odd.Size() != 7 || d.AllocatedBytes()-base != 8 {
		t.Errorf("size %d, allocated %d", odd.Size(), d.AllocatedBytes()-base)
	}
	got, err := d.Read(odd, 4, 3)
	if err != nil || string(got) != "\x05\x06\x07" {
		t.Errorf("Read = %v, %v", got, err)
	}
	if err := d.Write(odd, 4, []byte{9, 9, 9}); err != nil { // ends the buffer: padded
		t.Fatal(err)
	}
	if err := d.Write(odd, 0, []byte{9}); err == nil {
		t.Error("unaligned mid-buffer write accepted")
	}
	if err := d.Write(odd, 8, []byte{0, 0, 0, 0}); err == nil {
		t.Error("write past the end accepted")
	}
	if _, err := d.Read(odd, 0, 8); err == nil {
		t.Error("read past the end accepted")
	}
	got, _ = d.Read(odd, 0, 7)
	if string(got) != "\x01\x02\x03\x04\x09\x09\x09" {
		t.Errorf("after write: %v", got)
	}

	u, _ := d.NewBufferU32("u", []uint32{7, 8, 9})
	big, _ := d.NewBuffer("big", 20<<20) // larger than the reusable readback buffer
	if err := d.WriteU32(big, 20<<20-8, []uint32{0xdeadbeef, 42}); err != nil {
		t.Fatal(err)
	}
	all, err := d.ReadU32(big, 0, 5<<20)
	if err != nil || all[len(all)-2] != 0xdeadbeef || all[len(all)-1] != 42 || all[0] != 0 {
		t.Fatalf("big read: %v", err)
	}
	peak := d.PeakBytes()
	if want := base + 8 + 12 + 20<<20; peak < want {
		t.Errorf("peak %d < %d", peak, want)
	}
	r := d.NewRecorder()
	r.Copy(u, 4, big, 0, 8)
	r.Clear(u, 0, 4)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.ReadU32(big, 0, 2); v[0] != 8 || v[1] != 9 {
		t.Errorf("copy: %v", v)
	}
	if v, _ := d.ReadU32(u, 0, 3); v[0] != 0 || v[1] != 8 {
		t.Errorf("clear: %v", v)
	}
	big.Release()
	big.Release()
	u.Release()
	odd.Release()
	if d.AllocatedBytes() != base || d.PeakBytes() != peak {
		t.Errorf("after release: allocated %d (base %d), peak %d (was %d)", d.AllocatedBytes(), base, d.PeakBytes(), peak)
	}
	if _, err := d.NewBuffer("huge", d.Limits().MaxBufferSize+4); err == nil || !strings.Contains(err.Error(), "maxBufferSize") {
		t.Errorf("oversized buffer: %v", err)
	}
	if _, err := d.Read(odd, 0, 4); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("read of a released buffer: %v", err)
	}
}

func TestSubmitTimed(t *testing.T) {
	d := openTestDevice(t)
	add := elementwise(t, d, "add", 64)
	scale := elementwise(t, d, "scale", 64)
	const n = 1 << 16
	a, _ := d.NewBufferF32("a", make([]float32, n))
	out, _ := d.NewBuffer("out", 4*n)
	p, _ := d.Params(n, math.Float32bits(3))
	x, y, z := d.Grid(n, 64)
	if err := d.WriteF32(a, 0, []float32{1, 2}); err != nil {
		t.Fatal(err)
	}
	r := d.NewRecorder()
	for i := 0; i < 3; i++ {
		r.Dispatch(add, []Binding{{Buf: a}, {Buf: a}, {Buf: out}, {Buf: p}}, x, y, z)
		r.Dispatch(scale, []Binding{{Buf: a}, {}, {Buf: out}, {Buf: p}}, x, y, z)
	}
	out2, _ := d.NewBuffer("out2", 64)
	r.Copy(out, 0, out2, 0, 8)
	tm, err := r.SubmitTimed()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(tm)
	if d.HasTimestamps() && tm.Method != "timestamp-query" {
		t.Errorf("method %q with timestamps available", tm.Method)
	}
	if len(tm.Kernels) != 2 || tm.Kernels[0].Calls != 3 || tm.Kernels[1].Calls != 3 || tm.Total <= 0 {
		t.Errorf("timing %+v", tm)
	}
	if got, _ := d.ReadF32(out, 0, 2); got[0] != 3 || got[1] != 6 {
		t.Errorf("timed run computed %v", got)
	}
	if got, _ := d.ReadF32(out2, 0, 2); got[0] != 3 || got[1] != 6 {
		t.Errorf("timed run computed %v", got)
	}
	// The wall-clock fallback.
	r.Dispatch(add, []Binding{{Buf: a}, {Buf: a}, {Buf: out}, {Buf: p}}, x, y, z)
	tm, err = r.timeWithClockForTest()
	if err != nil || tm.Method != "wall-clock" || len(tm.Kernels) != 1 || tm.Kernels[0].Name != "add" {
		t.Errorf("wall-clock timing %+v, %v", tm, err)
	}
	if got, _ := d.ReadF32(out, 0, 2); got[0] != 2 || got[1] != 4 {
		t.Errorf("wall-clock run computed %v", got)
	}
}

var computeEntry = regexp.MustCompile(`@compute\s+@workgroup_size\([^)]*\)\s*fn\s+(\w+)`)

func TestEveryShaderCompiles(t *testing.T) {
	d := openTestDevice(t)
	for _, name := range shaders.Names() {
		defs, err := shaders.Defaults(name)
		if err != nil {
			t.Fatal(err)
		}
		src, err := shaders.Source(name, defs)
		if err != nil {
			t.Fatal(err)
		}
		entries := computeEntry.FindAllStringSubmatch(src, -1)
		if len(entries) == 0 {
			t.Errorf("%s: no @compute entry point found", name)
		}
		for _, m := range entries {
			if _, err := d.Kernel(name+":"+m[1], src, m[1]); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

func TestKernelWithoutBindings(t *testing.T) {
	d := openTestDevice(t)
	k, err := d.Kernel("nobind", "@compute @workgroup_size(1) fn main() { }", "main")
	if err != nil {
		t.Fatal(err)
	}
	if k.p.layout != nil {
		t.Error("layout for an entry point without bindings")
	}
	r := d.NewRecorder()
	r.Dispatch(k, nil, 1, 1, 1)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestAbandonedRecorderIsUnpinned(t *testing.T) {
	d := openTestDevice(t)
	add := elementwise(t, d, "add", 64)
	a, _ := d.NewBuffer("a", 64)
	p, _ := d.Params(16, 0)
	func() {
		r := d.NewRecorder()
		r.Dispatch(add, []Binding{{Buf: a}, {Buf: a}, {Buf: p}}, 1, 1, 1) // fails: not counted
		r2 := d.NewRecorder()
		out, _ := d.NewBuffer("out", 64)
		r2.Dispatch(add, []Binding{{Buf: a}, {Buf: a}, {Buf: out}, {Buf: p}}, 1, 1, 1)
		// dropped without Submit or Reset
	}()
	// Finalizers run when the runtime gets to them: on a loaded machine that
	// can take a while, so allow up to 10 s.
	for i := 0; i < 200; i++ {
		runtime.GC()
		d.mu.Lock()
		n := d.pending
		d.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("a recorder dropped without Submit stays pending")
}
