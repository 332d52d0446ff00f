package outfile

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// payload writes s.
func payload(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// requireNoTemp fails when dir holds a temporary file of this package.
func requireNoTemp(t *testing.T, dir string) {
	t.Helper()
	for _, n := range entries(t, dir) {
		if strings.Contains(n, ".tmp-") {
			t.Errorf("temporary file %s left in %s", n, dir)
		}
	}
}

// requireNoTempName fails when an error message shows a temporary name.
func requireNoTempName(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("message names the hidden temporary file: %v", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteNewAndReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.f32")
	if err := Write(p, payload("first")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got != "first" {
		t.Fatalf("content %q, want %q", got, "first")
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v, want 0644", st.Mode().Perm())
	}
	// A replaced file keeps its permissions.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, payload("second")); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(p)
	if got := readFile(t, p); got != "second" || st.Mode().Perm() != 0o600 {
		t.Fatalf("after replace: %q mode %v, want %q mode 0600", got, st.Mode().Perm(), "second")
	}
	requireNoTemp(t, dir)
}

// TestOutputSameAsInputRefused: `rwkv logits -m m.gguf -o m.gguf` replaced
// the model with the logits. The same path, a hard link, a symlink and a
// relative spelling of the model must all be refused, naming both paths,
// with the model untouched.
func TestOutputSameAsInputRefused(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(model, []byte("GGUF model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.gguf")
	soft := filepath.Join(dir, "soft.gguf")
	if err := os.Link(model, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("m.gguf", soft); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	dotted := sub + "/../m.gguf"
	for _, out := range []string{model, hard, soft, dotted} {
		err := Write(out, payload("logits"), filepath.Join(dir, "other.gguf"), model)
		if err == nil {
			t.Fatalf("-o %s with input %s: no error", out, model)
		}
		for _, want := range []string{out, model, "same file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("-o %s: message %q lacks %q", out, err, want)
			}
		}
		if err := Check(out, model); err == nil {
			t.Errorf("Check(-o %s): no error", out)
		}
	}
	if got := readFile(t, model); got != "GGUF model bytes" {
		t.Fatalf("the input was changed to %q", got)
	}
	requireNoTemp(t, dir)
	// A different file is fine, and a missing input is no conflict.
	if err := Write(filepath.Join(dir, "out.f32"), payload("x"), model, filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
}

// TestSymlinkOutputKeepsLink: writing through a symlink to a regular file
// replaces the target's content and keeps the link.
func TestSymlinkOutputKeepsLink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.f32")
	link := filepath.Join(dir, "link.f32")
	if err := os.WriteFile(real, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.f32", link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, payload("new")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(link)
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced by a file: %v %v", st.Mode(), err)
	}
	if got := readFile(t, real); got != "new" {
		t.Fatalf("target holds %q, want %q", got, "new")
	}
	requireNoTemp(t, dir)
}

// TestDevNullStaysACharDevice: -o /dev/null went through a temporary file
// and a rename, which (as root) replaced /dev/null with a regular file.
func TestDevNullStaysACharDevice(t *testing.T) {
	if err := Write(os.DevNull, payload(strings.Repeat("x", 3<<20))); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(os.DevNull)
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a character device: %v %v", os.DevNull, st.Mode(), err)
	}
	requireNoTemp(t, "/dev")
}

// TestDevFullReportsNoSpace: /dev/full is written in place and the write
// error names /dev/full and the cause.
func TestDevFullReportsNoSpace(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("/dev/full: %v (Linux has it)", err)
	}
	err := Write("/dev/full", payload(strings.Repeat("x", 100)))
	if err == nil {
		t.Fatal("writing /dev/full succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/dev/full") {
		t.Errorf("message %q: want /dev/full and ENOSPC", err)
	}
	requireNoTempName(t, err)
	st, err := os.Stat("/dev/full")
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/full is no longer a character device: %v %v", st.Mode(), err)
	}
	requireNoTemp(t, "/dev")
}

// TestFIFOWrittenInPlace: a named pipe receives the bytes and stays a pipe
// (a rename would have replaced it with a regular file nobody reads).
func TestFIFOWrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- "open: " + err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := Write(fifo, payload("through the pipe")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "through the pipe" {
			t.Fatalf("reader got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader got nothing")
	}
	st, err := os.Lstat(fifo)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v %v", st.Mode(), err)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("dir holds %v, want only the pipe", names)
	}
}

// TestBadTargetsNameTheCause: a missing folder, a folder as the target and
// a file used as a folder are reported with the user's path and the cause,
// never the temporary file, before anything is written.
func TestBadTargetsNameTheCause(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want []string
	}{
		{filepath.Join(dir, "missing", "out.f32"), []string{filepath.Join(dir, "missing", "out.f32"), "folder " + filepath.Join(dir, "missing") + " does not exist"}},
		{dir, []string{dir, "is a folder"}},
		{dir + "/", []string{"is a folder"}},
		{filepath.Join(file, "out.f32"), []string{filepath.Join(file, "out.f32"), "not a directory"}},
		{"", []string{"no output file"}},
	}
	for _, c := range cases {
		called := false
		err := Write(c.path, func(io.Writer) error { called = true; return nil })
		if err == nil {
			t.Fatalf("%q: no error", c.path)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: message %q lacks %q", c.path, err, w)
			}
		}
		requireNoTempName(t, err)
		if called {
			t.Errorf("%q: the writer ran before the target was checked", c.path)
		}
		if cerr := Check(c.path); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%q: Check says %v, Write says %v", c.path, cerr, err)
		}
	}
	requireNoTemp(t, dir)
}

// TestErrorLeavesNoTempAndKeepsOld: a failing writer leaves neither a
// temporary file nor a changed output.
func TestErrorLeavesNoTempAndKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.f32")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("engine failed")
	err := Write(p, func(w io.Writer) error {
		if _, err := w.Write(make([]byte, 3<<20)); err != nil { // past the buffer: on disk
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v, want the writer's error naming %s", err, p)
	}
	if got := readFile(t, p); got != "old" {
		t.Fatalf("output changed to %d bytes", len(got))
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("dir holds %v, want only out.f32", names)
	}
	live.Lock()
	n := len(live.files)
	live.Unlock()
	if n != 0 {
		t.Fatalf("%d temporary files still tracked", n)
	}
}

// TestRemoveLive calls the signal handler's cleanup directly.
func TestRemoveLive(t *testing.T) {
	dir := t.TempDir()
	tmp, err := createTemp(dir, "out.f32")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	removeLive()
	if names := entries(t, dir); len(names) != 0 {
		t.Fatalf("cleanup left %v", names)
	}
	untrack(tmp.Name())
}

// TestSignalRemovesTemp interrupts a child process in the middle of a write
// (SIGINT, then SIGTERM): the child must die by that signal and leave no
// temporary file. Before, an interrupted `rwkv synth` left a .tmp-* file of
// hundreds of MB.
func TestSignalRemovesTemp(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestSignalHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "OUTFILE_SIGNAL_HELPER="+filepath.Join(dir, "big.gguf"))
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
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the helper did not start writing")
		}
		var tmps int
		for _, n := range entries(t, dir) {
			if strings.Contains(n, ".tmp-") {
				tmps++
			}
		}
		if tmps != 1 {
			t.Fatalf("%v: %d temporary files while writing, want 1", sig, tmps)
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%v: the helper exited with %v", sig, err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != sig {
			t.Errorf("%v: the helper ended with %v, want death by the signal", sig, ee)
		}
		if names := entries(t, dir); len(names) != 0 {
			t.Fatalf("%v: left %v", sig, names)
		}
	}
}

// TestSignalHelper is the child of TestSignalRemovesTemp: it writes part of
// a file, says so, and blocks until killed.
func TestSignalHelper(t *testing.T) {
	path := os.Getenv("OUTFILE_SIGNAL_HELPER")
	if path == "" {
		return // only runs as the child
	}
	err := Write(path, func(w io.Writer) error {
		if _, err := w.Write(make([]byte, 4<<20)); err != nil {
			return err
		}
		os.Stdout.WriteString("WRITING\n")
		time.Sleep(time.Minute)
		return nil
	})
	t.Fatalf("not interrupted: %v", err)
}
