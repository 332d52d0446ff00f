// Package depcheck enforces the project's one-way import rules: a test that
// fails when a package imports against the direction written in README.md.
package depcheck

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rwkv-gpu/rwkv-gpu"

// allowed lists, per package folder, the project packages it may import in
// non-test files. Folders not listed may import nothing of ours.
var allowed = map[string][]string{
	"gguf":              {},
	"tokenizer":         {},
	"shaders":           {},
	"model":             {"gguf", "tokenizer", "internal/outfile"}, // outfile: for WriteFileAtomic in state.go
	"generate":          {"model", "tokenizer"},
	"serve":             {"model", "tokenizer", "generate"},
	"cpuref":            {"model", "gguf", "tokenizer"},
	"gpu":               {"gpu/vkinfo", "shaders", "internal/testenv"},
	"gpu/engine":        {"model", "gguf", "shaders", "tokenizer", "gpu"},
	"rwkv":              {"model", "gguf", "tokenizer", "cpuref", "gpu", "gpu/engine", "generate"},
	"gpu/vkinfo":        {},
	"internal/numtest":  {"gguf", "model", "tokenizer", "internal/fixtures", "internal/numcmp", "internal/streams"},
	"internal/streams":  {"model", "internal/numcmp"},
	"internal/numcmp":   {},
	"internal/synth":    {"gguf", "model", "tokenizer", "internal/outfile"},
	"bench":             {"model", "cpuref", "gpu", "gpu/engine", "gpu/vkinfo", "gguf", "tokenizer", "internal/synth", "generate", "rwkv"},
	"internal/fixtures": {"internal/testenv"},
	"internal/testenv":  {},
	"internal/gputest":  {"gpu", "internal/testenv"},
	"internal/outfile":  {},
	"cmd/rwkv":          {"*"},
}

// anyTest lists helper packages every folder may import from _test.go files.
var anyTest = []string{"internal/fixtures", "internal/numtest", "internal/testenv", "internal/gputest"}

// extraInTests lists project packages a folder may also import from its
// _test.go files (gpu is checked against cpuref only in tests).
var extraInTests = map[string][]string{
	"gpu":            {},
	"gpu/engine":     {"cpuref", "internal/numtest", "internal/synth"},
	"rwkv":           {"internal/synth"},
	"cpuref":         {"internal/numtest", "internal/synth"},
	"model":          {"internal/numtest", "internal/synth"},
	"gguf":           {"internal/numtest"},
	"tokenizer":      {},
	"bench":          {"internal/numtest", "gpu/engine"},
	"internal/synth": {"cpuref"},
	"generate":       {"gguf", "cpuref"},       // model files for the identity tests; the CPU engine for generation
	"serve":          {"cpuref", "gpu/engine"}, // the engines the server tests run on
}

// thirdParty says which folders may import a given third-party binding.
var thirdParty = map[string][]string{
	"github.com/cogentcore/webgpu":        {"gpu"},
	"github.com/vulkan-go/vulkan":         {"gpu/vkinfo"},
	"github.com/spf13/cobra":              {"cmd/rwkv"},
	"github.com/prometheus/client_golang": {"serve"},
	"github.com/openai/openai-go":         {"serve"}, // test-only: the client the server tests use
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s || x == "*" {
			return true
		}
	}
	return false
}

func TestImportDirection(t *testing.T) {
	root := repoRoot(t)
	fset := token.NewFileSet()
	var problems []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if rel == "internal/depcheck" {
			return nil
		}
		isTest := strings.HasSuffix(path, "_test.go")
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for prefix, folders := range thirdParty {
				if strings.HasPrefix(p, prefix) && !contains(folders, rel) {
					problems = append(problems, rel+" imports "+p+" (only "+strings.Join(folders, ", ")+" may)")
				}
			}
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			target := strings.TrimPrefix(p, module+"/")
			ok := contains(allowed[rel], target)
			if !ok && isTest {
				ok = contains(extraInTests[rel], target) || contains(anyTest, target) || target == rel
			}
			if !ok {
				where := "non-test file"
				if isTest {
					where = "test file"
				}
				problems = append(problems, rel+" imports "+target+" in "+where+" "+filepath.Base(path))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Errorf("import against the allowed direction: %s", p)
	}
}

// TestRulesCoverEveryPackage fails when a new package folder appears that the
// rules above do not mention, so its imports are decided, not defaulted.
func TestRulesCoverEveryPackage(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		matches, _ := filepath.Glob(filepath.Join(path, "*.go"))
		if len(matches) == 0 {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel == "internal/depcheck" {
			return nil
		}
		if _, ok := allowed[rel]; !ok {
			t.Errorf("package folder %s has no import rule in internal/depcheck", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
