package outfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPermissionDenied: a folder the user may not write into is reported
// with the user's path and "no permission", not the hidden temporary file
// (which is what `os.CreateTemp` names). Root may write anywhere, so as root
// the check runs in a child process as the unprivileged user 65534.
func TestPermissionDenied(t *testing.T) {
	base, err := os.MkdirTemp("", "outfile-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(base, 0o755); os.RemoveAll(base) })
	locked := filepath.Join(base, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(locked, "out.f32")
	if os.Geteuid() != 0 {
		if err := os.Chmod(locked, 0o555); err != nil {
			t.Fatal(err)
		}
		checkPermissionMessage(t, Write(out, payload("x")), out, locked)
		return
	}
	// Root: copy the test binary where user 65534 can run it.
	bin := filepath.Join(base, "outfile.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPermissionHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "OUTFILE_PERM_HELPER="+out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as user 65534: %v\n%s", err, msg)
	}
	if !strings.Contains(string(msg), "--- PASS: TestPermissionHelper") {
		t.Fatalf("helper did not run:\n%s", msg)
	}
	if names := entries(t, locked); len(names) != 0 {
		t.Fatalf("left %v", names)
	}
}

// TestPermissionHelper runs as the unprivileged child of TestPermissionDenied.
func TestPermissionHelper(t *testing.T) {
	out := os.Getenv("OUTFILE_PERM_HELPER")
	if out == "" {
		return
	}
	checkPermissionMessage(t, Write(out, payload("x")), out, filepath.Dir(out))
}

func checkPermissionMessage(t *testing.T, err error, out, dir string) {
	t.Helper()
	if err == nil {
		t.Fatalf("writing %s in a read-only folder succeeded", out)
	}
	for _, want := range []string{out, "no permission to create a file in the folder " + dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	requireNoTempName(t, err)
}
