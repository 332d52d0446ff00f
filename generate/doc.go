// Package generate holds the engine-independent parts of text generation
// (spec/tokenizer.md §4–§5): chat prompt assembly in the RWKV G-series
// format (and llama.cpp's, for A/B comparisons), an incremental form for a
// chat whose state is kept, stop rules matched across token boundaries,
// UTF-8-safe streaming of generated text, and versioned state files that
// carry the identity of the model they belong to.
//
// It imports model and tokenizer only; it never runs a model. A generation
// loop feeds a Conversation's turns to an engine session, passes each sampled
// token to a Streamer, prints what the Streamer returns, and stops when it
// says so.
package generate
