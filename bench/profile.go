package bench

import (
	"github.com/rwkv-gpu/rwkv-gpu/gpu/engine"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// profile is the per-kernel time of one decode step, and the host's time
// to record and submit the steps of the tg run.
type profile struct {
	method string
	shares []KernelShare
	cost   *engine.HostCost
}

// profileStep times one decode step per kernel family (the kernel files:
// lnmix = norms and token shift, matvec = every weight product, wkv = the
// WKV-7 recurrence with the LoRA ups, tokens = embedding and argmax).
//
// For the kernels that stream weights, the share carries the effective
// bandwidth: matvec reads every matrix once per token (weightBytes), wkv
// reads the LoRA up projections and reads and writes the WKV state
// (wkvBytes).
func profileStep(ge gpuEngine, s model.Session, token int, weightBytes, wkvBytes int64) (*profile, error) {
	// One untimed step first, so that pipelines are warm.
	if _, err := ge.ProfileStep(s, token); err != nil {
		return nil, err
	}
	tm, err := ge.ProfileStep(s, token)
	if err != nil {
		return nil, err
	}
	p := &profile{method: tm.Method}
	for _, k := range tm.Kernels {
		share := 0.0
		if tm.Total > 0 {
			share = float64(k.Total) / float64(tm.Total)
		}
		ks := KernelShare{Kernel: k.Name, MicrosPerTk: float64(k.Total.Nanoseconds()) / 1e3, Share: share}
		var bytes int64
		switch k.Name {
		case "matvec:matvec":
			bytes = weightBytes
		case "wkv:wkv":
			bytes = wkvBytes
		}
		if bytes > 0 && k.Total > 0 {
			ks.GBPerS = float64(bytes) / k.Total.Seconds() / 1e9
		}
		p.shares = append(p.shares, ks)
	}
	return p, nil
}
