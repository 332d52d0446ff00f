package gpu

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/cogentcore/webgpu/wgpu"
)

// Kernel is one compute entry point of a compiled WGSL source, ready to
// dispatch. Its name is used in errors and timings.
type Kernel struct {
	name string
	p    *pipeline
}

// Name is the name given to Device.Kernel.
func (k *Kernel) Name() string { return k.name }

// Entry is the WGSL entry point.
func (k *Kernel) Entry() string { return k.p.entry }

var errNoLayout = errors.New("no bind group 0")

type pipeKey struct {
	src   [32]byte
	entry string
}

type pipeline struct {
	id     uint64
	entry  string
	pipe   *wgpu.ComputePipeline
	layout *wgpu.BindGroupLayout // group 0; nil when the entry uses no bindings
}

func (p *pipeline) release() {
	if p.layout != nil {
		p.layout.Release()
	}
	p.pipe.Release()
}

// Kernel compiles (or fetches from the pipeline cache) the entry point
// entry of the WGSL source wgsl, with a layout derived from the shader
// (bind group 0). The cache key is (hash of the source, entry), so asking
// again each token is cheap; the name only labels errors and timings. A
// compile error is returned with the WGSL error text and the kernel name.
func (d *Device) Kernel(name, wgsl, entry string) (*Kernel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	key := pipeKey{sha256.Sum256([]byte(wgsl)), entry}
	if p, ok := d.pipelines[key]; ok {
		return &Kernel{name: name, p: p}, nil
	}
	fail := func(err error) (*Kernel, error) {
		return nil, &Error{Op: "compile", Kernel: name, Index: -1, Detail: "entry " + entry, Err: err}
	}
	mod, ok := d.modules[key.src]
	if !ok {
		err := guard(d.dev, func() (err error) {
			mod, err = d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
				Label:          name,
				WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: wgsl},
			})
			return err
		})
		if err != nil {
			return fail(err)
		}
		d.modules[key.src] = mod
	}
	var pipe *wgpu.ComputePipeline
	err := guard(d.dev, func() (err error) {
		pipe, err = d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
			Label:   name,
			Compute: wgpu.ProgrammableStageDescriptor{Module: mod, EntryPoint: entry},
		})
		return err
	})
	if err != nil {
		return fail(err)
	}
	d.nextID++
	p := &pipeline{id: d.nextID, entry: entry, pipe: pipe, layout: groupLayout(d.dev, pipe)}
	d.pipelines[key] = p
	return &Kernel{name: name, p: p}, nil
}

// groupLayout returns the pipeline's bind group 0 layout, or nil when the
// entry point has no bindings. wgpu reports that case as an uncaptured
// validation error, which would abort the process, so the call runs inside
// a validation scope (and the binding panics on the null handle).
func groupLayout(d *wgpu.Device, p *wgpu.ComputePipeline) *wgpu.BindGroupLayout {
	var l *wgpu.BindGroupLayout
	err := scoped(d, wgpu.ErrorFilterValidation, func() (err error) {
		defer func() {
			if recover() != nil {
				err = errNoLayout
			}
		}()
		l = p.GetBindGroupLayout(0)
		return nil
	})
	if err != nil {
		if l != nil {
			l.Release()
		}
		return nil
	}
	return l
}

// Grid returns the workgroup counts covering n invocations with workgroups
// of wg: ceil(n/wg) groups in x, folded into y when that exceeds the
// per-dimension limit (65535). Kernels then compute the flat index as
// gid.x + gid.y * nwg.x * WG (flat_index in common.wgsl) and skip indices
// >= n.
func (d *Device) Grid(n, wg uint32) (x, y, z uint32) {
	x, y = fold(ceilDiv(n, wg), d.limits.MaxComputeWorkgroupsPerDimension)
	return x, y, 1
}

func ceilDiv(n, d uint32) uint32 { return uint32((uint64(n) + uint64(d) - 1) / uint64(d)) }

// fold splits groups into x*y >= groups with x <= maxDim.
func fold(groups, maxDim uint32) (x, y uint32) {
	if maxDim == 0 {
		maxDim = 65535
	}
	if groups <= maxDim {
		return groups, 1
	}
	y = ceilDiv(groups, maxDim)
	x = ceilDiv(groups, y) // balance: fewer idle invocations in the last row
	return x, y
}

func (k *Kernel) String() string { return fmt.Sprintf("%s(%s)", k.name, k.p.entry) }
