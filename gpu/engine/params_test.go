package engine

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// paramBlocks maps each WGSL parameter struct the engine feeds to the Go
// struct that mirrors it.
var paramBlocks = map[string]any{
	"LnParams":       lnParams{},
	"EmbedParams":    embedParams{},
	"ArgmaxParams":   argmaxParams{},
	"Up":             upParams{},
	"WkvParams":      wkvParams{},
	"Job":            jobParams{},
	"MatvecParams":   matvecParams{},
	"SlotCopyParams": slotCopyParams{},
	"SampleParams":   sampleParams{},
}

// toolkitBlocks are uniform structs of kernels that the gpu toolkit feeds
// (its probe and test kernels), not the engine.
var toolkitBlocks = map[string]string{"bandwidth.wgsl": "Params", "elementwise.wgsl": "Params", "fma.wgsl": "FmaParams"}

// wgslField is one member of a WGSL struct.
type wgslField struct{ name, typ string }

var (
	structRE  = regexp.MustCompile(`(?s)struct\s+(\w+)\s*\{(.*?)\}`)
	fieldRE   = regexp.MustCompile(`^\s*(\w+)\s*:\s*([\w<>, ]+?)\s*,?\s*(//.*)?$`)
	uniformRE = regexp.MustCompile(`var<uniform>\s+\w+\s*:\s*(\w+)`)
)

// wgslStructs parses every struct declared in the shader files.
func wgslStructs(t *testing.T) (map[string][]wgslField, map[string]string) {
	t.Helper()
	structs := map[string][]wgslField{}
	where := map[string]string{}
	for _, name := range append(shaders.Names(), shaders.Fragments()...) {
		text, err := shaders.Raw(name)
		require.NoError(t, err)
		for _, m := range structRE.FindAllStringSubmatch(text, -1) {
			var fields []wgslField
			for _, line := range strings.Split(m[2], "\n") {
				if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				f := fieldRE.FindStringSubmatch(line)
				require.NotNil(t, f, "%s: struct %s: cannot read member line %q", name, m[1], line)
				fields = append(fields, wgslField{f[1], strings.ReplaceAll(f[2], " ", "")})
			}
			structs[m[1]] = fields
			where[m[1]] = name
		}
	}
	return structs, where
}

// layout is a type's alignment and size in WGSL's uniform address space.
type layout struct{ align, size int }

func roundUp(a, n int) int { return (n + a - 1) / a * a }

// wgslLayout returns a WGSL type's uniform layout and, for structs, each
// member's offset.
func wgslLayout(t *testing.T, structs map[string][]wgslField, typ string) (layout, []int) {
	t.Helper()
	switch typ {
	case "u32", "f32", "i32":
		return layout{4, 4}, nil
	case "vec4<u32>", "vec4<f32>", "vec4<i32>":
		return layout{16, 16}, nil
	}
	if m := regexp.MustCompile(`^array<(.+),(\d+)u?>$`).FindStringSubmatch(typ); m != nil {
		el, _ := wgslLayout(t, structs, m[1])
		n, _ := strconv.Atoi(m[2])
		stride := roundUp(16, roundUp(el.align, el.size)) // uniform arrays: stride a multiple of 16
		return layout{roundUp(16, el.align), stride * n}, nil
	}
	fields, ok := structs[typ]
	require.True(t, ok, "unknown WGSL type %s", typ)
	var offs []int
	off, align := 0, 1
	for _, f := range fields {
		if regexp.MustCompile(`^array<.*,[A-Z][A-Z0-9_]*>$`).MatchString(f.typ) {
			// A placeholder-sized table (the last member): it starts at a
			// multiple of 16; its size is not known here.
			off = roundUp(16, off)
			offs = append(offs, off)
			return layout{16, off}, offs
		}
		l, _ := wgslLayout(t, structs, f.typ)
		a := l.align
		if _, isStruct := structs[f.typ]; isStruct || strings.HasPrefix(f.typ, "array<") {
			a = roundUp(16, a) // uniform: struct and array members start at multiples of 16
		}
		off = roundUp(a, off)
		offs = append(offs, off)
		off += l.size
		align = max(align, a)
	}
	return layout{align, roundUp(align, off)}, offs
}

// normal compares Go and WGSL names: lower case without underscores.
func normal(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

// TestParamBlocksMatchWGSL checks every Go parameter block against the WGSL
// struct it feeds: the same members in the same order with the same names
// and types, at the offsets WGSL's uniform layout gives them (the Go side is
// encoded packed, see gpu.Device.ParamsOf); and every uniform struct the
// engine's kernels declare has its Go mirror.
func TestParamBlocksMatchWGSL(t *testing.T) {
	structs, where := wgslStructs(t)
	for wname, goVal := range paramBlocks {
		t.Run(wname, func(t *testing.T) {
			fields, ok := structs[wname]
			require.True(t, ok, "no WGSL struct %s in the shaders", wname)
			gt := reflect.TypeOf(goVal)
			require.Equal(t, len(fields), gt.NumField(), "%s (%s) has %d members, Go %s has %d", wname, where[wname], len(fields), gt.Name(), gt.NumField())
			wl, offs := wgslLayout(t, structs, wname)
			goOff := 0
			for i, f := range fields {
				gf := gt.Field(i)
				require.Equal(t, normal(f.name), normal(gf.Name), "%s member %d: WGSL %s, Go %s", wname, i, f.name, gf.Name)
				if gf.Type.Kind() == reflect.Slice {
					// A table whose length is a placeholder: the last member,
					// u32 words packed four to a vec4, starting at a multiple
					// of 16 bytes.
					require.Equal(t, len(fields)-1, i, "%s.%s: a runtime-sized table must be the last member", wname, f.name)
					require.Regexp(t, `^array<vec4<u32>,[A-Z0-9_]+>$`, f.typ, "%s.%s", wname, f.name)
					require.Equal(t, reflect.Uint32, gf.Type.Elem().Kind(), "%s.%s", wname, gf.Name)
					require.Zero(t, goOff%16, "%s.%s starts at %d", wname, f.name, goOff)
					return
				}
				require.Equal(t, f.typ, goWGSLType(t, gf.Type), "%s.%s: WGSL type %s, Go %s", wname, f.name, f.typ, gf.Type)
				require.Equal(t, offs[i], goOff, "%s.%s: WGSL offset %d, Go (packed) offset %d", wname, f.name, offs[i], goOff)
				goOff += binary.Size(reflect.Zero(gf.Type).Interface())
			}
			require.Equal(t, wl.size, binary.Size(goVal), "%s: WGSL size %d, Go size %d", wname, wl.size, binary.Size(goVal))
		})
	}
	for file, text := range kernelTexts(t) {
		for _, m := range uniformRE.FindAllStringSubmatch(text, -1) {
			if toolkitBlocks[file] == m[1] {
				continue
			}
			_, ok := paramBlocks[m[1]]
			require.True(t, ok, "%s binds uniform %s, which has no Go mirror in paramBlocks", file, m[1])
		}
	}
}

// goWGSLType names the WGSL type a Go field type mirrors.
func goWGSLType(t *testing.T, gt reflect.Type) string {
	switch gt.Kind() {
	case reflect.Uint32:
		return "u32"
	case reflect.Float32:
		return "f32"
	case reflect.Int32:
		return "i32"
	case reflect.Array:
		return fmt.Sprintf("array<%s,%d>", goWGSLType(t, gt.Elem()), gt.Len())
	case reflect.Struct:
		for w, v := range paramBlocks {
			if reflect.TypeOf(v) == gt {
				return w
			}
		}
	}
	t.Fatalf("Go type %s mirrors no WGSL type", gt)
	return ""
}

func kernelTexts(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, name := range shaders.Names() {
		text, err := shaders.Raw(name)
		require.NoError(t, err)
		out[name] = text
	}
	return out
}
