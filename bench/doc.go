// Package bench measures the engines: prefill and decode throughput, effective
// bandwidth and the roofline beside it.
package bench
