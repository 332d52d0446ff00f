// Package serve is an OpenAI-compatible HTTP server for one RWKV-7 model
// with continuous batching and a prefix-state cache.
//
// The HTTP layer (handlers.go: request parsing and validation in parse.go,
// server-sent events, OpenAI-shaped errors in errors.go, bearer-token
// auth, Prometheus metrics in metrics.go) never touches the engine: it
// turns a request into a job and hands it to the scheduler through a
// bounded queue (a full queue answers 429 with Retry-After).
//
// The scheduler (scheduler.go) is one goroutine that owns the engine
// through a generate.Batch. Between steps it admits queued jobs into the
// running batch (up to Options.MaxBatch sequences), cancels the jobs whose
// client has gone, and moves finished ones on; every step feeds a bounded
// number of prompt tokens (Options.PrefillBudget) next to the decoding
// sequences, each sampled on the device with its own parameters. It never
// waits for a client: text goes into each job's own buffer and a
// one-element notification channel wakes the handler.
//
// The prefix-state cache (cache.go) keeps, after each request, the state
// at the end of its prompt (all but the last prompt token, see below) and
// the state at the end of its answer, keyed by the token sequence each
// has consumed. A request whose prompt extends a cached sequence forks
// that state on the device and feeds only the new tokens; usage reports
// them as prompt_tokens_details.cached_tokens. Every cached state holds an
// engine state slot, so the engine must have MaxBatch + CacheEntries
// slots; the least recently used entry is evicted when a slot is needed.
//
// A generation runs in two parts: the prompt without its last token is
// fed with nothing asked back (generate.Request.MaxTokens 0), its state is
// forked into the cache, then the last prompt token is fed and the answer
// generated. A state one token short of the prompt serves both a repeat of
// the same prompt and any extension of it, since a hit must leave at least
// one token to feed to get the next token's logits.
package serve
