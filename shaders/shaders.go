package shaders

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Common is the name of the shared prelude that kernel files include.
const Common = "common.wgsl"

// Names returns the kernel files, sorted: the embedded .wgsl files that
// carry a "//! defines:" line. The others (Common, and fragments such as a
// table of weight formats) are include-only and are listed by Fragments.
func Names() []string {
	names, _ := split()
	return names
}

// Fragments returns the include-only files (no "//! defines:" line), sorted.
func Fragments() []string {
	_, frags := split()
	return frags
}

func split() (kernels, fragments []string) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err) // embedded FS: cannot fail
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".wgsl") {
			continue
		}
		b, _ := files.ReadFile(n)
		if _, ok := definesLine(string(b)); ok {
			kernels = append(kernels, n)
		} else {
			fragments = append(fragments, n)
		}
	}
	sort.Strings(kernels)
	sort.Strings(fragments)
	return kernels, fragments
}

// definesLine returns what follows "//! defines:" on the file's first such
// line.
func definesLine(text string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "//! defines:"); ok {
			return rest, true
		}
	}
	return "", false
}

// Raw returns the unspecialised text of an embedded file.
func Raw(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		k, f := split()
		return "", fmt.Errorf("shaders: unknown file %q (have %s)", name, strings.Join(append(k, f...), ", "))
	}
	return string(b), nil
}

// Defaults returns the placeholder values documented on the file's
// "//! defines:" line (an empty map for a fragment). The map is a
// fresh copy: change entries and pass it to Source.
func Defaults(name string) (map[string]string, error) {
	text, err := Raw(name)
	if err != nil {
		return nil, err
	}
	defs := map[string]string{}
	rest, _ := definesLine(text)
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !validName(k) || v == "" {
			return nil, fmt.Errorf("shaders: %s: bad entry %q on the defines line (want NAME=value)", name, f)
		}
		defs[k] = v
	}
	return defs, nil
}

// Source returns the specialised WGSL text of the named file: includes
// resolved and every {{NAME}} placeholder replaced by defines[NAME]. It is an
// error when a placeholder has no define, when a define is not used, or when
// a "{{" does not start a well-formed placeholder.
func Source(name string, defines map[string]string) (string, error) {
	return specialise(files, name, defines)
}

// specialise is Source over any file system (tests use fstest.MapFS).
func specialise(fsys fs.FS, name string, defines map[string]string) (string, error) {
	text, err := expand(fsys, name, map[string]bool{}, nil)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	var missing []string
	var out strings.Builder
	out.Grow(len(text))
	lines := strings.SplitAfter(text, "\n")
	for ln, line := range lines {
		code, comment := line, ""
		if i := strings.Index(line, "//"); i >= 0 {
			code, comment = line[:i], line[i:]
		}
		for {
			i := strings.Index(code, "{{")
			if i < 0 {
				break
			}
			j := strings.Index(code[i:], "}}")
			if j < 0 || !validName(code[i+2:i+j]) {
				return "", fmt.Errorf("shaders: %s (specialised line %d): malformed placeholder in %q (want {{NAME}}, NAME = [A-Z][A-Z0-9_]*)", name, ln+1, strings.TrimSpace(line))
			}
			key := code[i+2 : i+j]
			out.WriteString(code[:i])
			if v, ok := defines[key]; ok {
				used[key] = true
				out.WriteString(v)
			} else {
				missing = append(missing, key)
			}
			code = code[i+j+2:]
		}
		out.WriteString(code)
		out.WriteString(comment)
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("shaders: %s: no define for placeholder(s) %s", name, strings.Join(uniq(missing), ", "))
	}
	var unused []string
	for k := range defines {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return "", fmt.Errorf("shaders: %s: define(s) %s not used by the source (typo?)", name, strings.Join(unused, ", "))
	}
	return out.String(), nil
}

// expand resolves #include lines. seen holds files already included (each is
// included once); stack holds the current include chain, to report cycles.
func expand(fsys fs.FS, name string, seen map[string]bool, stack []string) (string, error) {
	for _, s := range stack {
		if s == name {
			return "", fmt.Errorf("shaders: include cycle %s -> %s", strings.Join(stack, " -> "), name)
		}
	}
	b, err := fs.ReadFile(fsys, name)
	text := string(b)
	if err != nil {
		err = fmt.Errorf("shaders: unknown file %q", name)
		if len(stack) > 0 {
			return "", fmt.Errorf("shaders: %s includes a missing file: %w", stack[len(stack)-1], err)
		}
		return "", err
	}
	seen[name] = true
	stack = append(stack, name)
	var out strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "#include")
		if !ok {
			out.WriteString(line)
			continue
		}
		rest = strings.TrimSpace(rest)
		if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
			return "", fmt.Errorf("shaders: %s: bad include line %q (want #include \"file.wgsl\")", name, strings.TrimSpace(line))
		}
		inc := rest[1 : len(rest)-1]
		if seen[inc] {
			// Already included (e.g. by another include): cycle or duplicate.
			for _, s := range stack {
				if s == inc {
					return "", fmt.Errorf("shaders: include cycle %s -> %s", strings.Join(stack, " -> "), inc)
				}
			}
			continue
		}
		body, err := expand(fsys, inc, seen, stack)
		if err != nil {
			return "", err
		}
		out.WriteString("// ---- begin " + inc + " ----\n")
		out.WriteString(body)
		if !strings.HasSuffix(body, "\n") {
			out.WriteString("\n")
		}
		out.WriteString("// ---- end " + inc + " ----\n")
	}
	return out.String(), nil
}

func validName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
