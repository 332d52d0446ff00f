package gpu

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

func TestAdaptersFindsLavapipe(t *testing.T) {
	ads, err := Adapters()
	if err != nil {
		t.Fatal(err)
	}
	if len(ads) == 0 {
		testenv.NoGPU(t, "%v", ErrNoAdapter)
	}
	found := false
	for i, a := range ads {
		t.Logf("%s driver=%q vendor=%q ids=%04x:%04x ts=%v limits=%+v", a, a.Driver, a.Vendor, a.VendorID, a.DeviceID, a.Timestamps, a.Limits)
		if a.Index != i {
			t.Errorf("adapter %d has Index %d", i, a.Index)
		}
		if i > 0 && typeRank(ads[i-1].Type) > typeRank(a.Type) {
			t.Errorf("adapters not ordered by type: %s before %s", ads[i-1], a)
		}
		if strings.Contains(a.Name, "llvmpipe") {
			found = true
			if a.Type != "cpu" || !a.IsSoftware() || a.Backend != "vulkan" {
				t.Errorf("lavapipe described as %+v", a)
			}
		}
	}
	if !found {
		if testenv.RequireGPU() {
			t.Fatal("lavapipe (llvmpipe) not among the adapters; CI expects it")
		}
		t.Log("lavapipe not present (a real GPU machine?)")
	}
}

func TestSortAdapters(t *testing.T) {
	infos := []AdapterInfo{
		{Name: "soft", Type: "cpu", Backend: "vulkan"},
		{Name: "igpu-gl", Type: "integrated", Backend: "opengl"},
		{Name: "dgpu", Type: "discrete", Backend: "vulkan"},
		{Name: "virt", Type: "unknown", Backend: "vulkan"},
		{Name: "igpu", Type: "integrated", Backend: "vulkan"},
	}
	sortAdapters(infos, nil)
	var got []string
	for i, a := range infos {
		got = append(got, a.Name)
		if a.Index != i {
			t.Errorf("%s: Index %d at %d", a.Name, a.Index, i)
		}
	}
	if want := "dgpu igpu igpu-gl virt soft"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

func TestPickAdapter(t *testing.T) {
	infos := []AdapterInfo{
		{Index: 0, Name: "NVIDIA GeForce RTX 4090", Backend: "vulkan", Type: "discrete"},
		{Index: 1, Name: "llvmpipe (LLVM 15.0.6, 256 bits)", Backend: "vulkan", Type: "cpu"},
	}
	cases := []struct {
		want    int
		env     string
		idx     int
		errPart string
	}{
		{AutoAdapter, "", 0, ""},
		{AutoAdapter, "1", 1, ""},
		{AutoAdapter, "LLVMPIPE", 1, ""},
		{AutoAdapter, "cpu", 1, ""},
		{AutoAdapter, "rtx", 0, ""},
		{1, "0", 1, ""}, // an explicit index wins over the environment
		{AutoAdapter, "7", -1, "RWKV_GPU=7 out of range"},
		{AutoAdapter, "radeon", -1, `RWKV_GPU="radeon" matches no adapter`},
		{5, "", -1, "adapter index 5 out of range"},
	}
	for _, c := range cases {
		idx, err := pickAdapter(infos, c.want, c.env)
		if c.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.errPart) || !strings.Contains(err.Error(), "llvmpipe") {
				t.Errorf("want=%d env=%q: err %v, want one containing %q and the adapter list", c.want, c.env, err, c.errPart)
			}
			continue
		}
		if err != nil || idx != c.idx {
			t.Errorf("want=%d env=%q: got %d, %v; want %d", c.want, c.env, idx, err, c.idx)
		}
	}
	if _, err := pickAdapter(nil, AutoAdapter, ""); !errors.Is(err, ErrNoAdapter) {
		t.Errorf("no adapters: %v", err)
	}
}

func TestRetryWithFakeRequestDevice(t *testing.T) {
	var slept []time.Duration
	sleep := func(d time.Duration) { slept = append(slept, d) }

	calls := 0
	v, tries, err := retry(4, 10*time.Millisecond, sleep, func() (string, error) {
		calls++
		if calls < 3 {
			return "", errors.New("failed to request device")
		}
		return "device", nil
	})
	if err != nil || v != "device" || tries != 3 {
		t.Fatalf("got %q after %d tries, %v", v, tries, err)
	}
	if len(slept) != 2 || slept[0] != 10*time.Millisecond || slept[1] != 20*time.Millisecond {
		t.Errorf("backoff %v, want [10ms 20ms]", slept)
	}

	slept, calls = nil, 0
	_, tries, err = retry(4, time.Millisecond, sleep, func() (int, error) {
		calls++
		return 0, errors.New("failed to request device")
	})
	if err == nil || tries != 4 || calls != 4 || len(slept) != 3 {
		t.Fatalf("always failing: tries %d calls %d slept %v err %v", tries, calls, slept, err)
	}
	if !strings.Contains(err.Error(), "try 1: failed") || !strings.Contains(err.Error(), "try 4: failed") {
		t.Errorf("error does not list the tries: %v", err)
	}
}

func TestRequiredLimits(t *testing.T) {
	a := wgpu.DefaultLimits()
	a.MaxStorageBufferBindingSize = 128 << 20
	a.MaxBufferSize = wgpu.LimitU64Undefined // adapter without a bound
	a.MaxComputeWorkgroupStorageSize = 32768
	a.MaxComputeInvocationsPerWorkgroup = 1024
	a.MaxStorageBuffersPerShaderStage = 32
	a.MaxPushConstantSize = 775102547 // garbage, as the binding reads it
	l := requiredLimits(a)
	if l.MaxStorageBufferBindingSize != 128<<20 || l.MaxComputeWorkgroupStorageSize != 32768 ||
		l.MaxComputeInvocationsPerWorkgroup != 1024 || l.MaxStorageBuffersPerShaderStage != 32 {
		t.Errorf("limits not raised to the adapter's: %+v", l)
	}
	if l.MaxBufferSize == wgpu.LimitU64Undefined || l.MaxBufferSize < 1<<40 {
		t.Errorf("unbounded MaxBufferSize must become a large concrete value, got %d", l.MaxBufferSize)
	}
	if l.MaxPushConstantSize != wgpu.LimitU32Undefined || l.MaxTextureDimension2D != wgpu.LimitU32Undefined {
		t.Errorf("unrelated limits must stay at the default: %+v", l)
	}
	a.MaxStorageBufferBindingSize = 1 << 40
	if l := requiredLimits(a); l.MaxStorageBufferBindingSize != math.MaxUint32 {
		t.Errorf("binding size not clamped to u32: %d", l.MaxStorageBufferBindingSize)
	}
}

func TestOpenReportsLimits(t *testing.T) {
	var log strings.Builder
	d, err := Open(Options{Adapter: AutoAdapter, Log: &log})
	if errors.Is(err, ErrNoAdapter) {
		testenv.NoGPU(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Log(strings.TrimSpace(log.String()))
	if !strings.Contains(log.String(), "using adapter") {
		t.Errorf("log %q lacks the adapter line", log.String())
	}
	l := d.Limits()
	ad := d.Info().Limits
	if l.MaxStorageBufferBindingSize != min(ad.MaxStorageBufferBindingSize, math.MaxUint32) || d.MaxBindingSize() != l.MaxStorageBufferBindingSize {
		t.Errorf("device binding limit %d, adapter %d", l.MaxStorageBufferBindingSize, ad.MaxStorageBufferBindingSize)
	}
	if l.MaxBufferSize != ad.MaxBufferSize && ad.MaxBufferSize != wgpu.LimitU64Undefined {
		t.Errorf("device buffer limit %d, adapter %d", l.MaxBufferSize, ad.MaxBufferSize)
	}
	if l.MaxComputeWorkgroupStorageSize != ad.MaxComputeWorkgroupStorageSize || l.MaxComputeInvocationsPerWorkgroup != ad.MaxComputeInvocationsPerWorkgroup {
		t.Errorf("workgroup limits %+v, adapter %+v", l, ad)
	}
	if strings.Contains(d.Info().Name, "llvmpipe") {
		if d.MaxBindingSize() != 128<<20 {
			t.Errorf("lavapipe binding limit %d, want 128 MiB", d.MaxBindingSize())
		}
		if !d.HasTimestamps() {
			t.Error("lavapipe supports timestamp queries")
		}
	}
}

func TestCloseTwice(t *testing.T) {
	d := openTestDevice(t)
	b, err := d.NewBuffer("b", 64)
	if err != nil {
		t.Fatal(err)
	}
	k := elementwise(t, d, "add", 64)
	r := d.NewRecorder()
	d.Close()
	d.Close()
	b.Release() // after Close: no-op
	if _, err := d.NewBuffer("x", 4); !errors.Is(err, ErrClosed) {
		t.Errorf("NewBuffer after Close: %v", err)
	}
	if _, err := d.Read(b, 0, 4); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := d.Kernel("k", "", "main"); !errors.Is(err, ErrClosed) {
		t.Errorf("Kernel after Close: %v", err)
	}
	r.Dispatch(k, []Binding{{Buf: b}}, 1, 1, 1)
	if err := r.Submit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	if d.AllocatedBytes() != 0 {
		t.Errorf("%d bytes still counted after Close", d.AllocatedBytes())
	}
	var nilDev *Device
	nilDev.Close()
}

func TestGridFold(t *testing.T) {
	cases := []struct{ groups, max, x, y uint32 }{
		{0, 65535, 0, 1},
		{1, 65535, 1, 1},
		{65535, 65535, 65535, 1},
		{65536, 65535, 32768, 2},
		{125001, 65535, 62501, 2},
		{10, 4, 4, 3},
	}
	for _, c := range cases {
		x, y := fold(c.groups, c.max)
		if x != c.x || y != c.y || uint64(x)*uint64(y) < uint64(c.groups) || x > c.max {
			t.Errorf("fold(%d, %d) = %d, %d; want %d, %d", c.groups, c.max, x, y, c.x, c.y)
		}
	}
	if ceilDiv(math.MaxUint32, 1) != math.MaxUint32 || ceilDiv(math.MaxUint32, 256) != 1<<24 {
		t.Error("ceilDiv overflow")
	}
}

// The binding's handle layout that errscope.go and instance.go rely on.
func TestBindingLayoutAssumptions(t *testing.T) {
	if !scopesUsable || !instanceWrappable {
		t.Fatalf("cogentcore/webgpu handle layout changed: scopes %v, instance %v", scopesUsable, instanceWrappable)
	}
	d := openTestDevice(t)
	// A validation error inside guard comes back, and the scopes stay
	// balanced: the device keeps working.
	want := errors.New("inner")
	if err := guard(d.dev, func() error { return want }); err != want {
		t.Errorf("guard returned %v", err)
	}
	err := guard(d.dev, func() error {
		_, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "bad", Size: 16, Usage: wgpu.BufferUsageMapRead | wgpu.BufferUsageStorage})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("invalid usage: %v", err)
	}
	b, err := d.NewBufferF32("after", []float32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.ReadF32(b, 0, 3); err != nil || got[2] != 3 {
		t.Errorf("after guard: %v %v", got, err)
	}
}
