package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// loadBar draws the loading progress of a model (the bytes of weights read
// and uploaded, rwkv.Options.Progress) on stderr when stderr is a terminal.
// Its zero value draws nothing.
type loadBar struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// newLoadBar returns a bar drawing on stderr, or nil when stderr is not a
// terminal or quiet is set (nothing is drawn then).
func newLoadBar(stderr io.Writer, quiet bool) *loadBar {
	f, ok := stderr.(*os.File)
	if quiet || !ok || !isTerminal(f) {
		return nil
	}
	return &loadBar{w: stderr}
}

// progress is the callback for rwkv.Options.Progress; nil for a nil bar.
func (b *loadBar) progress() func(done, total uint64) {
	if b == nil {
		return nil
	}
	return func(done, total uint64) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.bar == nil {
			b.bar = progressbar.NewOptions64(int64(total),
				progressbar.OptionSetWriter(b.w),
				progressbar.OptionSetDescription("loading"),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionShowCount(),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = b.bar.Set64(int64(done)) // drawing errors do not matter
	}
}

// finish clears the bar from the terminal.
func (b *loadBar) finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}
