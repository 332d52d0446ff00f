package generate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// tinyFile describes a GGUF file for the identity tests.
type tinyFile struct {
	name      string
	reorder   bool      // write the keys and tensors in another order
	embedType gguf.Type // type of the second tensor
	embedRows uint64
	data      byte // fill byte of the tensor data
}

// build writes and parses the file, returning weights bound to it (only the
// file and the config: IdentifyModel needs no more).
func (tf tinyFile) build(t *testing.T) *model.Weights {
	t.Helper()
	w := gguf.NewWriter()
	keys := []func(){
		func() { w.SetString("general.architecture", "rwkv7") },
		func() { w.SetString("general.name", tf.name) },
		func() { w.SetUint32("rwkv7.block_count", 1) },
		func() { w.SetFloat32("rwkv7.attention.layer_norm_epsilon", 1e-5) },
		func() { w.SetStrings("tokenizer.ggml.tokens", []string{"<s>", "a", "b"}) },
		func() { w.SetBool("x.flag", true) },
	}
	if tf.reorder {
		for i := len(keys) - 1; i >= 0; i-- {
			keys[i]()
		}
	} else {
		for _, k := range keys {
			k()
		}
	}
	norm := func() {
		if err := w.AddTensor("output_norm.weight", gguf.F32, []uint64{4}, bytes.Repeat([]byte{tf.data}, 16)); err != nil {
			t.Fatal(err)
		}
	}
	embed := func() {
		rb, _ := tf.embedType.RowBytes(32)
		if err := w.AddTensor("token_embd.weight", tf.embedType, []uint64{32, tf.embedRows}, bytes.Repeat([]byte{tf.data}, rb*int(tf.embedRows))); err != nil {
			t.Fatal(err)
		}
	}
	if tf.reorder {
		embed()
		norm()
	} else {
		norm()
		embed()
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "tiny.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return &model.Weights{File: f, Config: model.Config{Name: tf.name, Layers: 1, Dim: 4, HeadSize: 2, Vocab: 3}}
}

// le builds little-endian bytes by hand for expected encodings.
type le struct{ b []byte }

func (e *le) u8(x uint8)         { e.b = append(e.b, x) }
func (e *le) u32(x uint32)       { e.b = binary.LittleEndian.AppendUint32(e.b, x) }
func (e *le) u64(x uint64)       { e.b = binary.LittleEndian.AppendUint64(e.b, x) }
func (e *le) raw(s string)       { e.b = append(e.b, s...) }
func (e *le) str(s string)       { e.u64(uint64(len(s))); e.raw(s) }
func (e *le) hex(bytes ...uint8) { e.b = append(e.b, bytes...) }

func TestIdentifyModelEncoding(t *testing.T) {
	w := tinyFile{name: "tiny A", embedType: gguf.F16, embedRows: 3}.build(t)
	id, err := IdentifyModel(w)
	if err != nil {
		t.Fatal(err)
	}
	// The hashed bytes, written out from IdentifyModel's documentation:
	// keys in byte order, tensors in byte order of their names.
	var e le
	e.raw("rwkv-gpu model identity 1\n")
	e.u64(6)
	e.str("general.architecture")
	e.u32(8) // STRING
	e.u32(8)
	e.str("rwkv7")
	e.str("general.name")
	e.u32(8)
	e.u32(8)
	e.str("tiny A")
	e.str("rwkv7.attention.layer_norm_epsilon")
	e.u32(6) // FLOAT32
	e.u32(6)
	e.hex(0xAC, 0xC5, 0x27, 0x37) // 1e-5 as float32 bits 0x3727C5AC
	e.str("rwkv7.block_count")
	e.u32(4) // UINT32
	e.u32(4)
	e.u32(1)
	e.str("tokenizer.ggml.tokens")
	e.u32(9) // ARRAY
	e.u32(8) // of STRING
	e.u64(3)
	e.str("<s>")
	e.str("a")
	e.str("b")
	e.str("x.flag")
	e.u32(7) // BOOL
	e.u32(7)
	e.u8(1)
	e.u64(2)
	e.str("output_norm.weight")
	e.u32(0) // F32
	e.u32(1)
	e.u64(4)
	e.str("token_embd.weight")
	e.u32(1) // F16
	e.u32(2)
	e.u64(32)
	e.u64(3)
	want := sha256.Sum256(e.b)
	if id.Hash != want {
		t.Errorf("hash %x, want %x", id.Hash, want)
	}
	if id.Name != "tiny A" || id.Layers != 1 || id.Dim != 4 || id.HeadSize != 2 || id.Vocab != 3 {
		t.Errorf("identity %+v, want name \"tiny A\", L=1 D=4 N=2 V=3", id)
	}
}

func TestIdentifyModelSensitivity(t *testing.T) {
	base := tinyFile{name: "tiny A", embedType: gguf.F16, embedRows: 3}
	hash := func(tf tinyFile) [32]byte {
		id, err := IdentifyModel(tf.build(t))
		if err != nil {
			t.Fatal(err)
		}
		return id.Hash
	}
	h0 := hash(base)
	same := map[string]tinyFile{
		"keys and tensors reordered": {name: "tiny A", embedType: gguf.F16, embedRows: 3, reorder: true},
		"other tensor data":          {name: "tiny A", embedType: gguf.F16, embedRows: 3, data: 0x3C},
	}
	for what, tf := range same {
		if hash(tf) != h0 {
			t.Errorf("%s changed the identity", what)
		}
	}
	differ := map[string]tinyFile{
		"other name":        {name: "tiny B", embedType: gguf.F16, embedRows: 3},
		"other tensor type": {name: "tiny A", embedType: gguf.Q8_0, embedRows: 3},
		"other shape":       {name: "tiny A", embedType: gguf.F16, embedRows: 4},
	}
	for what, tf := range differ {
		if hash(tf) == h0 {
			t.Errorf("%s kept the identity", what)
		}
	}
	if _, err := IdentifyModel(&model.Weights{}); err == nil {
		t.Errorf("IdentifyModel without a file: no error")
	}
}

func TestIdentifyFixtures(t *testing.T) {
	f32, err := IdentifyModel(numtest.LoadFixture(t, "F32"))
	if err != nil {
		t.Fatal(err)
	}
	q8, err := IdentifyModel(numtest.LoadFixture(t, "Q8_0"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture README: both are "synthetic RWKV7 tiny", L=3, C=256,
	// head size 64, V=1024; llama-quantize changed the tensor types.
	for _, id := range []ModelID{f32, q8} {
		if id.Name != "synthetic RWKV7 tiny" || id.Layers != 3 || id.Dim != 256 || id.HeadSize != 64 || id.Vocab != 1024 {
			t.Errorf("fixture identity %+v, want \"synthetic RWKV7 tiny\" L=3 D=256 N=64 V=1024", id)
		}
	}
	if f32.Hash == q8.Hash {
		t.Errorf("F32 and Q8_0 fixtures have the same identity %x", f32.Hash)
	}
}

// BenchmarkIdentifyWorldVocab hashes the metadata of a file with the full
// 65536-entry World vocabulary (the bulk of a real model's metadata).
func BenchmarkIdentifyWorldVocab(b *testing.B) {
	f, err := gguf.Open(fixtures.Path(b, "vocab", "rwkv-world-vocab.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := &model.Weights{File: f, Config: model.Config{Layers: 1, Dim: 1, HeadSize: 1, Vocab: 65536}}
	for b.Loop() {
		if _, err := IdentifyModel(w); err != nil {
			b.Fatal(err)
		}
	}
}
