package shaders

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestEveryFileSpecialisesWithItsDocumentedDefines(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no kernel files embedded")
	}
	for _, n := range names {
		defs, err := Defaults(n)
		if err != nil {
			t.Fatal(err)
		}
		src, err := Source(n, defs)
		if err != nil {
			t.Fatalf("%s with its documented defines %v: %v", n, defs, err)
		}
		if !strings.Contains(src, "fn flat_index") {
			t.Errorf("%s: common.wgsl was not included", n)
		}
		if strings.Contains(src, "#include") {
			t.Errorf("%s: unresolved #include left", n)
		}
	}
	// The prelude is placeholder-free and specialises on its own.
	if _, err := Source(Common, nil); err != nil {
		t.Error(err)
	}
}

func TestNames(t *testing.T) {
	names := Names()
	found := false
	for _, n := range names {
		if n == Common {
			t.Error("Names must not list the prelude")
		}
		if n == "elementwise.wgsl" {
			found = true
		}
	}
	if !found {
		t.Errorf("elementwise.wgsl missing from %v", names)
	}
	frags := Fragments()
	hasCommon := false
	for _, f := range frags {
		hasCommon = hasCommon || f == Common
		for _, n := range names {
			if f == n {
				t.Errorf("%s is both a kernel and a fragment", f)
			}
		}
	}
	if !hasCommon {
		t.Errorf("common.wgsl missing from fragments %v", frags)
	}
}

func TestElementwiseSubstitution(t *testing.T) {
	src, err := Source("elementwise.wgsl", map[string]string{"WG": "64"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src, "const WG: u32 = 64u;") {
		t.Error("WG not substituted")
	}
	for _, line := range strings.Split(src, "\n") {
		code, _, _ := strings.Cut(line, "//")
		if strings.Contains(code, "{{") {
			t.Errorf("placeholder left in code: %q", line)
		}
	}
}

func TestErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"common.wgsl": {Data: []byte("// prelude {{IN_COMMENT}}\nfn helper() {}\n")},
		"k.wgsl":      {Data: []byte("//! defines: WG=64\n#include \"common.wgsl\"\nconst WG: u32 = {{WG}}u; // {{NOT_A_PLACEHOLDER}}\n")},
		"typo.wgsl":   {Data: []byte("const A: u32 = {{WG}}u;\nconst B: u32 = {{WGG}}u;\n")},
		"bad.wgsl":    {Data: []byte("const A: u32 = {{ wg }}u;\n")},
		"open.wgsl":   {Data: []byte("const A: u32 = {{WG;\n")},
		"cyc1.wgsl":   {Data: []byte("#include \"cyc2.wgsl\"\n")},
		"cyc2.wgsl":   {Data: []byte("#include \"cyc1.wgsl\"\n")},
		"miss.wgsl":   {Data: []byte("#include \"nope.wgsl\"\n")},
		"twice.wgsl":  {Data: []byte("#include \"common.wgsl\"\n#include \"common.wgsl\"\n")},
	}
	src, err := specialise(fsys, "k.wgsl", map[string]string{"WG": "64"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src, "fn helper()") || !strings.Contains(src, "64u;") || !strings.Contains(src, "{{NOT_A_PLACEHOLDER}}") {
		t.Errorf("unexpected output:\n%s", src)
	}
	src, err = specialise(fsys, "twice.wgsl", nil)
	if err != nil || strings.Count(src, "fn helper()") != 1 {
		t.Errorf("double include: err=%v, text:\n%s", err, src)
	}
	cases := []struct {
		file string
		defs map[string]string
		want string
	}{
		{"typo.wgsl", map[string]string{"WG": "1"}, "no define for placeholder(s) WGG"},
		{"k.wgsl", map[string]string{"WG": "1", "EXTRA": "2"}, "define(s) EXTRA not used"},
		{"k.wgsl", nil, "no define for placeholder(s) WG"},
		{"bad.wgsl", nil, "malformed placeholder"},
		{"open.wgsl", map[string]string{"WG": "1"}, "malformed placeholder"},
		{"cyc1.wgsl", nil, "include cycle"},
		{"miss.wgsl", nil, `unknown file "nope.wgsl"`},
		{"none.wgsl", nil, `unknown file "none.wgsl"`},
	}
	for _, c := range cases {
		_, err := specialise(fsys, c.file, c.defs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: got error %v, want one containing %q", c.file, c.defs, err, c.want)
		}
	}
	// The real Source reports an unknown placeholder too.
	if _, err := Source("elementwise.wgsl", map[string]string{"WG": "64", "TYPO": "1"}); err == nil {
		t.Error("unused define accepted by Source")
	}
	if _, err := Source("elementwise.wgsl", nil); err == nil || !strings.Contains(err.Error(), "WG") {
		t.Errorf("missing WG: %v", err)
	}
}

func TestDefaultsParsing(t *testing.T) {
	d, err := Defaults("elementwise.wgsl")
	if err != nil || d["WG"] != "256" || len(d) != 1 {
		t.Fatalf("Defaults = %v, %v", d, err)
	}
	if _, err := Defaults("missing.wgsl"); err == nil {
		t.Error("unknown file accepted")
	}
}
