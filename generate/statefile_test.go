package generate

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// testModel is a model identity with a recognisable hash: bytes first,
// first+1, ...
func testModel(name string, first byte) ModelID {
	id := ModelID{Name: name, Layers: 1, Dim: 2, HeadSize: 1, Vocab: 5}
	for i := range id.Hash {
		id.Hash[i] = first + byte(i)
	}
	return id
}

// testStateFile is a state of L=1, D=2, N=1 (6 values) with a full context.
func testStateFile() *StateFile {
	return &StateFile{
		Model: testModel("ab", 0x01),
		State: &model.State{Layers: 1, Dim: 2, HeadSize: 1, Data: []float32{1, -2, 0.5, 0, 1.5, -0.25}},
		Context: &GenContext{Tokens: 7, TranscriptLen: 3, Transcript: "hi!",
			Sampler: &SamplerContext{Seed: 9, Counter: 4, Penalties: []TokenCount{{1, 1}, {4, 0.5}}}},
	}
}

// testStateBytes is testStateFile's encoding, written out by hand from the
// layout documented in statefile.go.
func testStateBytes() []byte {
	var e le
	e.raw("RWKV7STATE\x00\x00")
	e.u32(2)
	for i := 1; i <= 32; i++ {
		e.u8(uint8(i))
	}
	e.u32(2)
	e.raw("ab")
	e.u32(1) // L
	e.u32(2) // D
	e.u32(1) // N
	e.u32(5) // V
	e.u32(2) // sections
	e.raw("ctx ")
	e.u64(27)
	e.u64(7)
	e.u64(3)
	e.u64(3)
	e.raw("hi!")
	e.raw("smpl")
	e.u64(36)
	e.u64(9)
	e.u64(4)
	e.u32(2)
	e.u32(1)
	e.hex(0x00, 0x00, 0x80, 0x3F) // 1.0
	e.u32(4)
	e.hex(0x00, 0x00, 0x00, 0x3F) // 0.5
	e.u64(6)
	e.hex(0x00, 0x00, 0x80, 0x3F) // 1
	e.hex(0x00, 0x00, 0x00, 0xC0) // -2
	e.hex(0x00, 0x00, 0x00, 0x3F) // 0.5
	e.hex(0x00, 0x00, 0x00, 0x00) // 0
	e.hex(0x00, 0x00, 0xC0, 0x3F) // 1.5
	e.hex(0x00, 0x00, 0x80, 0xBE) // -0.25
	e.u32(crc32.Checksum(e.b, crc32.MakeTable(crc32.Castagnoli)))
	return e.b
}

func TestStateFileEncoding(t *testing.T) {
	var buf bytes.Buffer
	n, err := testStateFile().WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := testStateBytes()
	if got := buf.Bytes(); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("encoding differs at byte %d (got %d bytes, want %d):\n got % x\nwant % x", i, len(got), len(want), got[i:min(len(got), i+16)], want[i:min(len(want), i+16)])
	}
	if n != int64(len(want)) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, len(want))
	}
}

func TestStateFileRead(t *testing.T) {
	f, err := ReadStateFile(bytes.NewReader(testStateBytes()), "golden")
	if err != nil {
		t.Fatal(err)
	}
	m := f.Model
	if m.Name != "ab" || m.Hash[0] != 1 || m.Hash[31] != 32 || m.Layers != 1 || m.Dim != 2 || m.HeadSize != 1 || m.Vocab != 5 {
		t.Errorf("model %+v", m)
	}
	s := f.State
	wantData := []float32{1, -2, 0.5, 0, 1.5, -0.25}
	if s.Layers != 1 || s.Dim != 2 || s.HeadSize != 1 || len(s.Data) != len(wantData) {
		t.Fatalf("state L=%d D=%d N=%d with %d values", s.Layers, s.Dim, s.HeadSize, len(s.Data))
	}
	for i, x := range wantData {
		if s.Data[i] != x {
			t.Errorf("state value %d = %v, want %v", i, s.Data[i], x)
		}
	}
	c := f.Context
	if c == nil || c.Tokens != 7 || c.TranscriptLen != 3 || c.Transcript != "hi!" || c.Sampler == nil {
		t.Fatalf("context %+v", c)
	}
	sm := c.Sampler
	if sm.Seed != 9 || sm.Counter != 4 || len(sm.Penalties) != 2 || sm.Penalties[0] != (TokenCount{1, 1}) || sm.Penalties[1] != (TokenCount{4, 0.5}) {
		t.Errorf("sampler %+v", sm)
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := testModel("G1 0.1B", 0x40)
	want.Layers, want.Dim, want.HeadSize, want.Vocab = 2, 4, 2, 100
	data := make([]float32, 2*(2*4+4*2))
	for i := range data {
		data[i] = float32(i)*0.25 - 3
	}
	data[5] = float32(math.Copysign(0, -1))
	contexts := map[string]*GenContext{
		"no context":          nil,
		"context, no sampler": {Tokens: 1 << 40, TranscriptLen: 12},
		"transcript":          {Tokens: 3, TranscriptLen: 11, Transcript: "User: hé\n\n"},
		"sampler":             {Sampler: &SamplerContext{Seed: 1<<64 - 1, Counter: 2, Penalties: []TokenCount{{0, 0}, {99, 3.5}}}},
		"empty penalties":     {Sampler: &SamplerContext{Seed: 5}},
	}
	for what, ctx := range contexts {
		path := filepath.Join(dir, "s.state")
		in := &StateFile{Model: want, State: &model.State{Layers: 2, Dim: 4, HeadSize: 2, Data: data}, Context: ctx}
		if err := SaveStateFile(path, in); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out, err := LoadStateFile(path, want)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if out.Model != want {
			t.Errorf("%s: model %+v, want %+v", what, out.Model, want)
		}
		for i := range data {
			if math.Float32bits(out.State.Data[i]) != math.Float32bits(data[i]) {
				t.Fatalf("%s: state value %d = %v, want %v", what, i, out.State.Data[i], data[i])
			}
		}
		switch {
		case ctx == nil && out.Context != nil:
			t.Errorf("%s: context %+v, want none", what, out.Context)
		case ctx != nil && out.Context == nil:
			t.Errorf("%s: no context", what)
		case ctx != nil:
			got := out.Context
			if got.Tokens != ctx.Tokens || got.TranscriptLen != ctx.TranscriptLen || got.Transcript != ctx.Transcript || (got.Sampler == nil) != (ctx.Sampler == nil) {
				t.Errorf("%s: context %+v, want %+v", what, got, ctx)
			} else if s := ctx.Sampler; s != nil {
				g := got.Sampler
				if g.Seed != s.Seed || g.Counter != s.Counter || len(g.Penalties) != len(s.Penalties) {
					t.Errorf("%s: sampler %+v, want %+v", what, g, s)
				}
				for i := range s.Penalties {
					if i < len(g.Penalties) && g.Penalties[i] != s.Penalties[i] {
						t.Errorf("%s: penalty %d = %+v, want %+v", what, i, g.Penalties[i], s.Penalties[i])
					}
				}
			}
		}
	}
}

func TestStateFileWrongModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.state")
	f := testStateFile()
	f.Model = testModel("model A", 0xA0)
	if err := SaveStateFile(path, f); err != nil {
		t.Fatal(err)
	}
	_, err := LoadStateFile(path, testModel("model B", 0xB0))
	if err == nil {
		t.Fatal("a state of model A loaded for model B")
	}
	if !errors.Is(err, ErrWrongModel) {
		t.Errorf("error %v does not wrap ErrWrongModel", err)
	}
	for _, part := range []string{path, `"model A" (sha256 a0a1a2a3a4a5)`, `"model B" (sha256 b0b1b2b3b4b5)`} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %s", err, part)
		}
	}
	// The same name with another hash is refused too, and an unnamed
	// model says so.
	other := testModel("", 0xA1)
	_, err = LoadStateFile(path, other)
	if err == nil || !strings.Contains(err.Error(), `(unnamed) (sha256 a1a2a3a4a5a6)`) {
		t.Errorf("loading for an unnamed model: %v", err)
	}
	// Same hash, different shape: the file contradicts the model.
	shape := testModel("model A", 0xA0)
	shape.Vocab = 6
	if _, err = LoadStateFile(path, shape); err == nil || !errors.Is(err, ErrBadStateFile) {
		t.Errorf("loading with another vocabulary: %v, want ErrBadStateFile", err)
	}
	if _, err = LoadStateFile(path, testModel("model A", 0xA0)); err != nil {
		t.Errorf("loading for the right model: %v", err)
	}
}

func TestStateFileTruncated(t *testing.T) {
	full := testStateBytes()
	for k := 0; k < len(full); k++ {
		_, err := ReadStateFile(bytes.NewReader(full[:k]), "cut.state")
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", k, len(full))
		}
		if !errors.Is(err, ErrBadStateFile) || !strings.Contains(err.Error(), "cut.state") || !strings.Contains(err.Error(), "truncated at byte") {
			t.Fatalf("truncated to %d bytes: error %q, want a bad-state-file error naming cut.state and the truncation", k, err)
		}
	}
	// And on disk, through LoadStateFile.
	path := filepath.Join(t.TempDir(), "short.state")
	if err := os.WriteFile(path, full[:len(full)-9], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadStateFile(path, testModel("ab", 0x01))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated at byte") {
		t.Errorf("LoadStateFile of a truncated file: %v", err)
	}
}

func TestStateFileCorrupt(t *testing.T) {
	full := testStateBytes()
	// Every single changed byte is refused (by the structure checks or the
	// CRC-32C, which detects any error confined to 32 bits).
	for i := range full {
		bad := bytes.Clone(full)
		bad[i] ^= 0xFF
		if _, err := ReadStateFile(bytes.NewReader(bad), "flip.state"); err == nil || !errors.Is(err, ErrBadStateFile) {
			t.Fatalf("byte %d flipped: error %v, want ErrBadStateFile", i, err)
		}
	}
	cases := []struct {
		name string
		edit func(b []byte) []byte
		want string
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, "not a state file"},
		{"gguf", func(b []byte) []byte { return append([]byte("GGUF\x03\x00\x00\x00"), b[8:]...) }, "not a state file"},
		{"version 3", func(b []byte) []byte { b[12] = 3; return b }, "version 3, expected 2"},
		{"data bit", func(b []byte) []byte { b[len(b)-8] ^= 1; return b }, "checksum"},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, "unexpected bytes after the checksum"},
		{"huge name", func(b []byte) []byte { b[48], b[49] = 0xFF, 0xFF; return b }, "model name of 65535 bytes"},
		{"head size", func(b []byte) []byte { b[62] = 3; return b }, "head size 3 does not divide the dimension 2"},
		{"many sections", func(b []byte) []byte { b[70] = 3; return b }, "3 sections (at most 2)"},
		{"unknown section", func(b []byte) []byte { b[74] = 'X'; return b }, `unexpected section "Xtx "`},
		{"sampler first", func(b []byte) []byte { copy(b[74:78], "smpl"); return b }, `unexpected section "smpl" at position 1`},
	}
	for _, c := range cases {
		_, err := ReadStateFile(bytes.NewReader(c.edit(testStateBytes())), "bad.state")
		if err == nil || !errors.Is(err, ErrBadStateFile) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.state") {
			t.Errorf("%s: error %v, want one naming bad.state and containing %q", c.name, err, c.want)
		}
	}
}

func TestStateFileVersion1(t *testing.T) {
	// A file written by model.State.WriteTo (version 1) has no identity.
	var buf bytes.Buffer
	s := &model.State{Layers: 1, Dim: 2, HeadSize: 1, Data: make([]float32, 6)}
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	_, err := ReadStateFile(&buf, "old.state")
	if err == nil || !errors.Is(err, ErrBadStateFile) || !strings.Contains(err.Error(), "version 1 state file") {
		t.Errorf("version 1 file: error %v", err)
	}
}

func TestStateFileNonFinite(t *testing.T) {
	// A NaN stored in the data (with a valid checksum) is refused on read.
	b := testStateBytes()
	const firstValue = 169                                 // 12+4+32+4+2+16+4, the ctx section (39), the smpl section (48), the count (8)
	copy(b[firstValue+4:], []byte{0x00, 0x00, 0xC0, 0x7F}) // value 1 = NaN
	binaryPutCRC(b)
	if _, err := ReadStateFile(bytes.NewReader(b), "nan.state"); err == nil || !strings.Contains(err.Error(), "state value 1 is NaN") {
		t.Errorf("NaN in the file: %v", err)
	}
}

// binaryPutCRC rewrites the last 4 bytes as the CRC-32C of the rest.
func binaryPutCRC(b []byte) {
	sum := crc32.Checksum(b[:len(b)-4], crc32.MakeTable(crc32.Castagnoli))
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
}

func TestStateFileWriteRefused(t *testing.T) {
	cases := []struct {
		name string
		edit func(f *StateFile)
		want string
	}{
		{"NaN", func(f *StateFile) { f.State.Data[3] = float32(math.NaN()) }, "state value 3 is NaN"},
		{"Inf", func(f *StateFile) { f.State.Data[0] = float32(math.Inf(-1)) }, "state value 0 is -Inf"},
		{"shape", func(f *StateFile) { f.State.Dim = 4 }, "does not match model"},
		{"length", func(f *StateFile) { f.State.Data = f.State.Data[:5] }, "state has 5 values, expected 6"},
		{"no state", func(f *StateFile) { f.State = nil }, "no state"},
		{"transcript", func(f *StateFile) { f.Context.TranscriptLen = 4 }, "transcript of 3 bytes, but its length says 4"},
		{"penalty order", func(f *StateFile) { f.Context.Sampler.Penalties[1].ID = 1 }, "ids must ascend"},
		{"penalty id", func(f *StateFile) { f.Context.Sampler.Penalties[1].ID = 5 }, "token 5 outside the vocabulary [0, 5)"},
		{"penalty NaN", func(f *StateFile) { f.Context.Sampler.Penalties[0].Count = float32(math.NaN()) }, "must be finite"},
		{"penalty negative", func(f *StateFile) { f.Context.Sampler.Penalties[0].Count = -1 }, "must be finite and ≥ 0"},
		{"bad head size", func(f *StateFile) { f.Model.HeadSize = 0 }, "head size 0"},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.state")
	if err := SaveStateFile(path, testStateFile()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		f := testStateFile()
		c.edit(f)
		err := SaveStateFile(path, f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		var buf bytes.Buffer
		if n, err := f.WriteTo(&buf); err == nil || n != 0 || buf.Len() != 0 {
			t.Errorf("%s: WriteTo wrote %d bytes, error %v", c.name, buf.Len(), err)
		}
	}
	// The refused saves left the earlier file as it was, and no temporary files.
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, testStateBytes()) {
		t.Errorf("the existing file changed (err %v)", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the folder, want 1", len(entries))
	}
}

func FuzzReadStateFile(f *testing.F) {
	f.Add(testStateBytes())
	noCtx := testStateFile()
	noCtx.Context = nil
	var buf bytes.Buffer
	if _, err := noCtx.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(testStateBytes()[:100])
	f.Add([]byte("RWKV7STATE\x00\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ReadStateFile(bytes.NewReader(data), "fuzz.state")
		if err != nil {
			if !errors.Is(err, ErrBadStateFile) {
				t.Fatalf("error %v does not wrap ErrBadStateFile", err)
			}
			return
		}
		// A file that reads has exactly one encoding: writing it back gives
		// the same bytes.
		var out bytes.Buffer
		if _, err := sf.WriteTo(&out); err != nil {
			t.Fatalf("a file that reads cannot be written: %v", err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("read and written again, %d bytes became %d", len(data), out.Len())
		}
	})
}
