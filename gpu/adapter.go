package gpu

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cogentcore/webgpu/wgpu"
	"github.com/rwkv-gpu/rwkv-gpu/gpu/vkinfo"
)

// Limits are the device limits this package cares about.
type Limits struct {
	MaxStorageBufferBindingSize       uint64 // largest range one storage binding may cover
	MaxBufferSize                     uint64
	MaxUniformBufferBindingSize       uint64
	MaxComputeWorkgroupStorageSize    uint32 // bytes of var<workgroup>
	MaxComputeInvocationsPerWorkgroup uint32
	MaxComputeWorkgroupSizeX          uint32
	MaxComputeWorkgroupsPerDimension  uint32 // usually 65535; see Device.Grid
	MaxStorageBuffersPerShaderStage   uint32
	MinStorageBufferOffsetAlignment   uint32 // binding offsets must be multiples of this
	MinUniformBufferOffsetAlignment   uint32
}

func limitsFrom(l wgpu.Limits) Limits {
	return Limits{
		MaxStorageBufferBindingSize:       l.MaxStorageBufferBindingSize,
		MaxBufferSize:                     l.MaxBufferSize,
		MaxUniformBufferBindingSize:       l.MaxUniformBufferBindingSize,
		MaxComputeWorkgroupStorageSize:    l.MaxComputeWorkgroupStorageSize,
		MaxComputeInvocationsPerWorkgroup: l.MaxComputeInvocationsPerWorkgroup,
		MaxComputeWorkgroupSizeX:          l.MaxComputeWorkgroupSizeX,
		MaxComputeWorkgroupsPerDimension:  l.MaxComputeWorkgroupsPerDimension,
		MaxStorageBuffersPerShaderStage:   l.MaxStorageBuffersPerShaderStage,
		MinStorageBufferOffsetAlignment:   l.MinStorageBufferOffsetAlignment,
		MinUniformBufferOffsetAlignment:   l.MinUniformBufferOffsetAlignment,
	}
}

// AdapterInfo describes one WebGPU adapter.
type AdapterInfo struct {
	Index      int    // position in Adapters(); what Options.Adapter and RWKV_GPU select
	Name       string // e.g. "NVIDIA GeForce RTX 4090", "llvmpipe (LLVM 15.0.6, 256 bits)"
	Vendor     string // vendor name as wgpu reports it (often a hex id)
	VendorID   uint32
	DeviceID   uint32
	Backend    string // "vulkan", "metal", "d3d12", ...
	Type       string // "discrete", "integrated", "unknown" (wgpu reports virtual GPUs so), "cpu"
	Driver     string // driver description; Adapters fills it from Vulkan when wgpu has none
	Timestamps bool   // supports timestamp queries
	Limits     Limits
}

// IsSoftware reports whether the adapter runs on the CPU (lavapipe,
// SwiftShader, WARP): fine for tests, slow for real models.
func (a AdapterInfo) IsSoftware() bool { return a.Type == "cpu" }

func (a AdapterInfo) String() string {
	return fmt.Sprintf("%d: %s [%s, %s]", a.Index, a.Name, a.Backend, a.Type)
}

func describeAdapter(a *wgpu.Adapter) AdapterInfo {
	info := a.GetInfo()
	// wgpu-native puts hex ids in the name fields on some drivers (lavapipe:
	// Name "0x0", description "llvmpipe (...)"): prefer a real name.
	name, driver := info.Name, info.DriverDescription
	if name == "" || strings.HasPrefix(name, "0x") {
		name, driver = driver, ""
	}
	if name == "" {
		name = fmt.Sprintf("adapter %04x:%04x", info.VendorId, info.DeviceId)
	}
	t := "unknown"
	switch info.AdapterType {
	case wgpu.AdapterTypeDiscreteGPU:
		t = "discrete"
	case wgpu.AdapterTypeIntegratedGPU:
		t = "integrated"
	case wgpu.AdapterTypeCPU:
		t = "cpu"
	}
	return AdapterInfo{
		Name:       name,
		Vendor:     info.VendorName,
		VendorID:   info.VendorId,
		DeviceID:   info.DeviceId,
		Backend:    info.BackendType.String(),
		Type:       t,
		Driver:     driver,
		Timestamps: a.HasFeature(wgpu.FeatureNameTimestampQuery),
		Limits:     limitsFrom(a.GetLimits().Limits),
	}
}

func typeRank(t string) int {
	switch t {
	case "discrete":
		return 0
	case "integrated":
		return 1
	case "unknown":
		return 2
	}
	return 3 // cpu
}

func backendRank(b string) int {
	switch b {
	case "vulkan", "metal", "d3d12":
		return 0
	}
	return 1
}

// sortAdapters orders adapters discrete > integrated > virtual/unknown > CPU,
// native backends (Vulkan, Metal, D3D12) first within a type, else in the
// driver's order; it sets Index.
func sortAdapters(infos []AdapterInfo, handles []*wgpu.Adapter) {
	idx := make([]int, len(infos))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := infos[idx[a]], infos[idx[b]]
		if typeRank(x.Type) != typeRank(y.Type) {
			return typeRank(x.Type) < typeRank(y.Type)
		}
		return backendRank(x.Backend) < backendRank(y.Backend)
	})
	si := make([]AdapterInfo, len(infos))
	var sh []*wgpu.Adapter
	if handles != nil {
		sh = make([]*wgpu.Adapter, len(handles))
	}
	for to, from := range idx {
		si[to] = infos[from]
		si[to].Index = to
		if handles != nil {
			sh[to] = handles[from]
		}
	}
	copy(infos, si)
	copy(handles, sh)
}

func enumerate(inst *wgpu.Instance) ([]AdapterInfo, []*wgpu.Adapter) {
	handles := inst.EnumerateAdapters(nil)
	infos := make([]AdapterInfo, len(handles))
	for i, a := range handles {
		infos[i] = describeAdapter(a)
	}
	sortAdapters(infos, handles)
	return infos, handles
}

// Adapters lists every WebGPU adapter, best first: discrete > integrated >
// virtual/unknown > CPU (software). An empty list is not an error.
func Adapters() ([]AdapterInfo, error) {
	setLogLevel()
	inst, err := newInstance()
	if err != nil {
		return nil, err
	}
	defer inst.Release()
	infos, handles := enumerate(inst)
	for _, h := range handles {
		h.Release()
	}
	addVulkanDrivers(infos)
	return infos, nil
}

// addVulkanDrivers fills the empty Driver of Vulkan adapters from vkinfo
// (matched by vendor and device id), when a Vulkan loader is present.
func addVulkanDrivers(infos []AdapterInfo) {
	var devs []vkinfo.Device
	looked := false
	for i := range infos {
		a := &infos[i]
		if a.Driver != "" || a.Backend != "vulkan" {
			continue
		}
		if !looked {
			devs, _ = vkinfo.Devices()
			looked = true
		}
		for _, v := range devs {
			if v.VendorID == a.VendorID && v.DeviceID == a.DeviceID {
				a.Driver = strings.TrimSpace(v.DriverName + " " + v.DriverInfo)
				if a.Driver == "" {
					a.Driver = "driver " + v.DriverVersionString
				}
				break
			}
		}
	}
}

// pickAdapter chooses among sorted adapters: want >= 0 is an index; want < 0
// means the best one unless env (RWKV_GPU) names an index or a
// case-insensitive substring of "name backend type".
func pickAdapter(infos []AdapterInfo, want int, env string) (int, error) {
	if len(infos) == 0 {
		return -1, ErrNoAdapter
	}
	list := func() string {
		var s []string
		for _, a := range infos {
			s = append(s, a.String())
		}
		return strings.Join(s, "; ")
	}
	if want >= 0 {
		if want >= len(infos) {
			return -1, fmt.Errorf("gpu: adapter index %d out of range (have %s)", want, list())
		}
		return want, nil
	}
	env = strings.TrimSpace(env)
	if env == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(env); err == nil {
		if n < 0 || n >= len(infos) {
			return -1, fmt.Errorf("gpu: RWKV_GPU=%d out of range (have %s)", n, list())
		}
		return n, nil
	}
	for i, a := range infos {
		hay := strings.ToLower(a.Name + " " + a.Backend + " " + a.Type)
		if strings.Contains(hay, strings.ToLower(env)) {
			return i, nil
		}
	}
	return -1, fmt.Errorf("gpu: RWKV_GPU=%q matches no adapter (have %s)", env, list())
}

// setLogLevel silences wgpu-native's own stderr logging (errors reach the
// caller as Go errors) unless RWKV_WGPU_LOG is error|warn|info|debug|trace.
func setLogLevel() {
	lvl := wgpu.LogLevelOff
	switch strings.ToLower(os.Getenv("RWKV_WGPU_LOG")) {
	case "error":
		lvl = wgpu.LogLevelError
	case "warn":
		lvl = wgpu.LogLevelWarn
	case "info":
		lvl = wgpu.LogLevelInfo
	case "debug":
		lvl = wgpu.LogLevelDebug
	case "trace":
		lvl = wgpu.LogLevelTrace
	}
	wgpu.SetLogLevel(lvl)
}
