package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ciSandbox lays out repo/.ci/run (this repository's script) beside an
// optional shared/fixtures, with stub make, go and apt-get first on PATH;
// the stub make records the CI variable it sees in repo/make.log.
func ciSandbox(t *testing.T, withFixtures bool) (repo string, env []string) {
	t.Helper()
	script, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	repo = filepath.Join(root, "repo")
	if err := os.MkdirAll(filepath.Join(repo, ".ci"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".ci", "run"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if withFixtures {
		for _, d := range []string{"tiny", "vocab"} {
			if err := os.MkdirAll(filepath.Join(root, "shared", "fixtures", d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stubs := map[string]string{
		"make":    "#!/bin/sh\necho \"CI=$CI $*\" >> make.log\n",
		"go":      "#!/bin/sh\nexit 0\n",
		"apt-get": "#!/bin/sh\nexit 0\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + root}
	return repo, env
}

func runCI(t *testing.T, repo string, env []string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed to run .ci/run: %v", err)
	}
	cmd := exec.Command("bash", filepath.Join(repo, ".ci", "run"))
	cmd.Env = env // no CI, no RWKV_FIXTURES unless the case adds them
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCIScriptIsStrictByItself: .ci/run must export CI=1 for the tests
// (whoever runs it), and stop with a clear message before installing or
// testing anything when the shared fixtures are missing.
func TestCIScriptIsStrictByItself(t *testing.T) {
	repo, env := ciSandbox(t, true)
	out, err := runCI(t, repo, env)
	if err != nil {
		t.Fatalf(".ci/run with fixtures: %v\n%s", err, out)
	}
	log, err := os.ReadFile(filepath.Join(repo, "make.log"))
	if err != nil {
		t.Fatalf("make was not run: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(log)); got != "CI=1 test" {
		t.Errorf("make ran as %q, want %q", got, "CI=1 test")
	}

	repo, env = ciSandbox(t, false)
	out, err = runCI(t, repo, env)
	if err == nil {
		t.Fatalf(".ci/run without fixtures succeeded:\n%s", out)
	}
	if !strings.Contains(out, "shared test fixtures are missing: ../shared/fixtures") {
		t.Errorf("message does not say what is missing:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(repo, "make.log")); err == nil {
		t.Errorf("make ran without fixtures")
	}

	// RWKV_FIXTURES, when set, is where the tests look: it must exist.
	repo, env = ciSandbox(t, true)
	out, err = runCI(t, repo, append(env, "RWKV_FIXTURES=/nonexistent/fixtures"))
	if err == nil || !strings.Contains(out, "missing: /nonexistent/fixtures") {
		t.Errorf(".ci/run with a bad RWKV_FIXTURES: %v\n%s", err, out)
	}
}
