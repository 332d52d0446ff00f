package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of their own
// (so that two servers in one process do not clash).
type metrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec // by endpoint and status code
	cancelled prometheus.Counter     // requests whose client left before the end
	rejected  prometheus.Counter     // 429: queue full

	promptTokens     prometheus.Counter // prompt tokens of admitted requests
	cachedTokens     prometheus.Counter // of those, taken from the cache
	processedTokens  prometheus.Counter // of those, fed to the engine
	completionTokens prometheus.Counter

	occupancy     prometheus.Gauge // sequences in the batch
	batchCapacity prometheus.Gauge
	queueLength   prometheus.Gauge
	queueCapacity prometheus.Gauge
	steps         prometheus.Counter

	cacheEntries   prometheus.Gauge
	cacheCapacity  prometheus.Gauge
	cacheBytes     prometheus.Gauge
	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	cacheEvictions prometheus.Counter

	ttft prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "rwkv_" + name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rwkv_" + name, Help: help})
		m.reg.MustRegister(g)
		return g
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rwkv_requests_total", Help: "HTTP requests answered, by endpoint and status code."}, []string{"endpoint", "code"})
	m.reg.MustRegister(m.requests)
	m.cancelled = counter("requests_cancelled_total", "Generations cancelled because their client went away (or the server shut down).")
	m.rejected = counter("requests_rejected_total", "Requests refused with 429 because the queue was full.")
	m.promptTokens = counter("prompt_tokens_total", "Prompt tokens of admitted requests.")
	m.cachedTokens = counter("prompt_tokens_cached_total", "Prompt tokens taken from the prefix-state cache instead of being fed to the engine.")
	m.processedTokens = counter("prompt_tokens_processed_total", "Prompt tokens fed to the engine.")
	m.completionTokens = counter("completion_tokens_total", "Tokens generated.")
	m.occupancy = gauge("batch_occupancy", "Sequences in the running batch.")
	m.batchCapacity = gauge("batch_capacity", "The most sequences in the batch (--max-batch).")
	m.queueLength = gauge("queue_length", "Requests waiting for a place in the batch.")
	m.queueCapacity = gauge("queue_capacity", "The most requests that may wait.")
	m.steps = counter("steps_total", "Batched engine steps.")
	m.cacheEntries = gauge("cache_entries", "States held by the prefix-state cache.")
	m.cacheCapacity = gauge("cache_capacity", "The most states the prefix-state cache holds.")
	m.cacheBytes = gauge("cache_bytes", "Device memory of the states held by the prefix-state cache.")
	m.cacheHits = counter("cache_hits_total", "Requests that started from a cached state.")
	m.cacheMisses = counter("cache_misses_total", "Requests that found no cached state.")
	m.cacheEvictions = counter("cache_evictions_total", "Cached states evicted to make room.")
	m.ttft = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rwkv_time_to_first_token_seconds",
		Help: "Time from a request's arrival to its first text.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
	m.reg.MustRegister(m.ttft)
	m.reg.MustRegister(collectors.NewGoCollector())
	return m
}
