package synth

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
)

// TestInterruptedEnsureLeavesNothing interrupts a child process while it
// writes the 0.1B model into the cache (as `rwkv bench` does on first use):
// the child must die by SIGINT and leave no temporary file (before, a
// .tmp-* file of hundreds of MB stayed in the cache folder).
func TestInterruptedEnsureLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureSignalHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SYNTH_SIGNAL_HELPER="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "WRITING" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the helper ended before writing")
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the helper did not start writing")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the helper exited with %v, want death by SIGINT", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("the helper ended with %v, want death by SIGINT", ee)
	}
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Errorf("left in the cache: %s", e.Name())
	}
}

// TestEnsureSignalHelper is the child of TestInterruptedEnsureLeavesNothing.
func TestEnsureSignalHelper(t *testing.T) {
	dir := os.Getenv("SYNTH_SIGNAL_HELPER")
	if dir == "" {
		return
	}
	p, err := PresetByName("0.1b")
	if err != nil {
		t.Fatal(err)
	}
	said := false
	opt := Options{Preset: p, Type: gguf.Q8_0, Seed: 1, Progress: func(done, total int64) {
		if !said && done > 8<<20 {
			said = true
			os.Stdout.WriteString("WRITING\n")
			time.Sleep(time.Minute) // wait for the signal with the file half written
		}
	}}
	_, err = Ensure(dir, opt)
	t.Fatalf("not interrupted: %v", err)
}
