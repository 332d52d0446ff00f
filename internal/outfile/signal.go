package outfile

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// live tracks the temporary files that exist now. While there is one, SIGINT
// and SIGTERM remove them all and then end the process by the same signal
// (the default action), so an interrupted write leaves nothing behind.
var live struct {
	sync.Mutex
	files map[string]bool
	sig   chan os.Signal
}

// track adds a temporary file, starting the signal watch for the first one.
func track(name string) {
	live.Lock()
	defer live.Unlock()
	if live.files == nil {
		live.files = map[string]bool{}
	}
	live.files[name] = true
	if live.sig == nil {
		live.sig = make(chan os.Signal, 1)
		signal.Notify(live.sig, os.Interrupt, syscall.SIGTERM)
		go watch(live.sig)
	}
}

// untrack forgets a temporary file (renamed or removed), stopping the watch
// after the last one so that signals get their usual handling again.
func untrack(name string) {
	live.Lock()
	defer live.Unlock()
	delete(live.files, name)
	if len(live.files) == 0 && live.sig != nil {
		signal.Stop(live.sig)
		close(live.sig)
		live.sig = nil
	}
}

// watch waits for a signal on c; on one it removes the live temporary files
// and re-raises the signal with its default action.
func watch(c chan os.Signal) {
	s, ok := <-c
	if !ok {
		return // untracked: no file left
	}
	removeLive()
	live.Lock()
	if live.sig == c {
		signal.Stop(c)
		live.sig = nil
	}
	live.Unlock()
	if sig, ok := s.(syscall.Signal); ok {
		syscall.Kill(os.Getpid(), sig)
	}
}

// removeLive removes every tracked temporary file. It is the cleanup the
// signal watch runs; tests call it directly.
func removeLive() {
	live.Lock()
	defer live.Unlock()
	for name := range live.files {
		os.Remove(name)
		delete(live.files, name)
	}
}
