package testenv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestFuzzScriptFindsEveryTarget: `make fuzz` (scripts/fuzz.sh) must run
// every fuzz target of the repository; its list is compared with the Fuzz
// functions found by parsing every _test.go file.
func TestFuzzScriptFindsEveryTarget(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			if name := funcName(decl); strings.HasPrefix(name, "Fuzz") {
				want = append(want, "./"+filepath.ToSlash(rel)+" "+name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "fuzz.sh"), "--list").Output()
	if err != nil {
		t.Fatalf("scripts/fuzz.sh --list: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("scripts/fuzz.sh lists\n  %s\nthe sources hold\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if len(want) < 7 {
		t.Errorf("only %d fuzz targets found: %v", len(want), want)
	}
}

// funcName returns the name of a top-level function declaration (not a
// method), or "".
func funcName(decl ast.Decl) string {
	fd, ok := decl.(*ast.FuncDecl)
	if !ok || fd.Recv != nil {
		return ""
	}
	return fd.Name.Name
}
