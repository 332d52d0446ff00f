package bench

import "time"

// This file holds the benchmark's arithmetic as pure functions of counts
// and durations, so that tests can feed known numbers.

// TokensPerS is the rate of a run that handled tokens tokens in d.
func TokensPerS(tokens int, d time.Duration) float64 {
	return float64(tokens) / d.Seconds()
}

// DecodeTokensPerS is the aggregate rate of a run that decoded steps
// tokens in each of batch sequences in d: batch·steps / d.
func DecodeTokensPerS(batch, steps int, d time.Duration) float64 {
	return TokensPerS(batch*steps, d)
}

// DecodeGBPerS is the effective bandwidth of a decode at an aggregate rate
// of tokensPerS over batch sequences: every step moves bytesPerStep (the
// weights once, the per-sequence traffic per sequence) and there are
// tokensPerS / batch steps per second.
func DecodeGBPerS(bytesPerStep int64, tokensPerS float64, batch int) float64 {
	return float64(bytesPerStep) * tokensPerS / float64(batch) / 1e9
}

// PrefillGFLOPPerS is the arithmetic throughput of a prefill of tokens
// tokens doing flops floating-point operations at tokensPerS.
func PrefillGFLOPPerS(flops int64, tokens int, tokensPerS float64) float64 {
	return float64(flops) * tokensPerS / float64(tokens) / 1e9
}

// Fraction is x as a fraction of the probe's rate (0 when the probe's rate
// is unknown).
func Fraction(x, probe float64) float64 {
	if probe <= 0 {
		return 0
	}
	return x / probe
}

// setRates fills a result's rate and the figures derived from it from the
// tokens/s of each repetition: pp rows (MatrixFLOPs set) get GFLOP/s and
// their fraction of the multiply-add probe, tg rows (BytesPerStep set) GB/s
// and their fraction of the read probe.
func (r *Result) setRates(rates []float64, prompt int) {
	r.TokensPerS, r.Stddev = Stats(rates)
	if r.MatrixFLOPs > 0 {
		r.GFLOPPerS = PrefillGFLOPPerS(r.MatrixFLOPs, prompt, r.TokensPerS)
		r.FMAFraction = Fraction(r.GFLOPPerS, r.FMAProbeGFLOPPerS)
	}
	if r.BytesPerStep > 0 {
		r.GBPerS = DecodeGBPerS(r.BytesPerStep, r.TokensPerS, r.Batch)
		r.RooflineFraction = Fraction(r.GBPerS, r.RooflineGBPerS)
	}
}

// now reads the config's clock (time.Now unless a test set one).
func (c Config) now() time.Time {
	if c.clock != nil {
		return c.clock()
	}
	return time.Now()
}

// since returns the time elapsed from start on the config's clock.
func (c Config) since(start time.Time) time.Duration { return c.now().Sub(start) }
