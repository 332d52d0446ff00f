package generate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// A state file (version 2) holds one sequence's recurrent state with the
// identity of the model it belongs to and, optionally, its generation
// context. All integers are little-endian:
//
//	magic     12 bytes "RWKV7STATE\0\0" (as version 1, model.State.WriteTo)
//	version   u32 = 2
//	model     32-byte SHA-256 identity (IdentifyModel), u32 name length
//	          (at most 4096) and the name, u32 L, D, N (state shape), V (vocab)
//	sections  u32 count (0 to 2), then per section a 4-byte tag, a u64
//	          payload length and the payload, in this order:
//	  "ctx "  u64 tokens fed, u64 transcript length, u64 stored transcript
//	          length (0 or the transcript length) and the transcript bytes
//	  "smpl"  (only after "ctx ") u64 seed, u64 counter, u32 n, then n pairs
//	          u32 token id (ascending, below V), f32 penalty count (finite, ≥ 0)
//	data      u64 count = L·(2D + D·N), then count float32 (finite)
//	crc       u32 CRC-32C (Castagnoli) of every byte before it
//
// A reader refuses anything else, so a file has one encoding.
const (
	stateFileMagic = "RWKV7STATE\x00\x00"
	// StateFileVersion is the version of the state file layout written.
	StateFileVersion = 2

	maxModelName   = 4096
	maxLayers      = 1 << 16
	maxDim         = 1 << 20
	maxVocab       = 1 << 31
	maxTranscript  = 1 << 30
	tagContext     = "ctx "
	tagSampler     = "smpl"
	floatsPerChunk = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadStateFile is wrapped by errors about malformed state files:
// truncated, corrupt, of another version, or inconsistent.
var ErrBadStateFile = errors.New("bad state file")

// ErrWrongModel is wrapped by the error for a state file saved for another
// model than the loaded one.
var ErrWrongModel = errors.New("state file belongs to another model")

// GenContext is the generation context saved with a state, so that a chat
// or a generation can be resumed where it stopped.
type GenContext struct {
	// Tokens is how many tokens the state has consumed.
	Tokens uint64
	// TranscriptLen is how many bytes of chat transcript the state has
	// consumed (Conversation.Transcript).
	TranscriptLen uint64
	// Transcript is the transcript itself, or "" when it is kept elsewhere;
	// when present its length is TranscriptLen.
	Transcript string
	// Sampler is the sampler's context, or nil.
	Sampler *SamplerContext
}

// SamplerContext is what a sampler needs to continue a reply exactly: its
// random stream position and its repetition penalty counts.
type SamplerContext struct {
	Seed    uint64
	Counter uint64 // random numbers drawn so far
	// Penalties are the decayed occurrence counts of the tokens generated in
	// the current reply, by ascending token id.
	Penalties []TokenCount
}

// TokenCount is one token's penalty count.
type TokenCount struct {
	ID    int
	Count float32
}

// StateFile is the content of a state file.
type StateFile struct {
	Model   ModelID
	State   *model.State
	Context *GenContext // nil when none is saved
}

// check validates f before it is written; name is used in errors.
func (f *StateFile) check(name string) error {
	m, s := f.Model, f.State
	if s == nil {
		return fmt.Errorf("generate: state file %s: no state", name)
	}
	if err := checkShape(m); err != nil {
		return fmt.Errorf("generate: state file %s: model %s: %w", name, m, err)
	}
	if s.Layers != m.Layers || s.Dim != m.Dim || s.HeadSize != m.HeadSize {
		return fmt.Errorf("generate: state file %s: state shape L=%d D=%d N=%d does not match model %s (L=%d D=%d N=%d)",
			name, s.Layers, s.Dim, s.HeadSize, m, m.Layers, m.Dim, m.HeadSize)
	}
	if want := stateFloats(m); uint64(len(s.Data)) != want {
		return fmt.Errorf("generate: state file %s: state has %d values, expected %d", name, len(s.Data), want)
	}
	if i := firstNonFinite(s.Data); i >= 0 {
		return fmt.Errorf("generate: state file %s: state value %d is %v", name, i, s.Data[i])
	}
	if len(m.Name) > maxModelName {
		return fmt.Errorf("generate: state file %s: model name of %d bytes (at most %d)", name, len(m.Name), maxModelName)
	}
	if err := f.Context.check(m.Vocab); err != nil {
		return fmt.Errorf("generate: state file %s: %w", name, err)
	}
	return nil
}

// check validates a generation context (nil is valid).
func (c *GenContext) check(vocab int) error {
	if c == nil {
		return nil
	}
	if c.Transcript != "" && uint64(len(c.Transcript)) != c.TranscriptLen {
		return fmt.Errorf("transcript of %d bytes, but its length says %d", len(c.Transcript), c.TranscriptLen)
	}
	if len(c.Transcript) > maxTranscript {
		return fmt.Errorf("transcript of %d bytes (at most %d)", len(c.Transcript), maxTranscript)
	}
	if c.Sampler == nil {
		return nil
	}
	for i, p := range c.Sampler.Penalties {
		if p.ID < 0 || p.ID >= vocab {
			return fmt.Errorf("penalty %d: token %d outside the vocabulary [0, %d)", i, p.ID, vocab)
		}
		if i > 0 && p.ID <= c.Sampler.Penalties[i-1].ID {
			return fmt.Errorf("penalty %d: token %d after token %d (ids must ascend)", i, p.ID, c.Sampler.Penalties[i-1].ID)
		}
		if !(p.Count >= 0) || math.IsInf(float64(p.Count), 0) {
			return fmt.Errorf("penalty %d: token %d has count %v (must be finite and ≥ 0)", i, p.ID, p.Count)
		}
	}
	return nil
}

// checkShape validates the state shape and vocabulary of a model identity.
func checkShape(m ModelID) error {
	switch {
	case m.Layers < 1 || m.Layers > maxLayers:
		return fmt.Errorf("%d layers (expected 1 to %d)", m.Layers, maxLayers)
	case m.Dim < 1 || m.Dim > maxDim:
		return fmt.Errorf("dimension %d (expected 1 to %d)", m.Dim, maxDim)
	case m.HeadSize < 1 || m.Dim%m.HeadSize != 0:
		return fmt.Errorf("head size %d does not divide the dimension %d", m.HeadSize, m.Dim)
	case m.Vocab < 1 || m.Vocab > maxVocab:
		return fmt.Errorf("vocabulary of %d (expected 1 to %d)", m.Vocab, maxVocab)
	}
	return nil
}

// stateFloats is L·(2D + D·N) for a checked shape.
func stateFloats(m ModelID) uint64 {
	return uint64(m.Layers) * (2*uint64(m.Dim) + uint64(m.Dim)*uint64(m.HeadSize))
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// WriteTo writes the state file. It refuses an inconsistent StateFile
// (shape, non-finite values, unsorted penalties) before writing anything.
func (f *StateFile) WriteTo(w io.Writer) (int64, error) {
	if err := f.check("(being written)"); err != nil {
		return 0, err
	}
	crc := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 1<<16)
	var b []byte
	le := binary.LittleEndian
	m := f.Model
	b = append(b, stateFileMagic...)
	b = le.AppendUint32(b, StateFileVersion)
	b = append(b, m.Hash[:]...)
	b = le.AppendUint32(b, uint32(len(m.Name)))
	b = append(b, m.Name...)
	for _, v := range []int{m.Layers, m.Dim, m.HeadSize, m.Vocab} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = append(b, f.sections()...)
	b = le.AppendUint64(b, uint64(len(f.State.Data)))
	bw.Write(b)
	buf := make([]byte, 4*floatsPerChunk)
	for data := f.State.Data; len(data) > 0; {
		n := min(len(data), floatsPerChunk)
		for i, x := range data[:n] {
			le.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		bw.Write(buf[:4*n])
		data = data[n:]
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("generate: writing state file: %w", err)
	}
	_, err := w.Write(le.AppendUint32(nil, crc.Sum32()))
	if err != nil {
		return cw.n, fmt.Errorf("generate: writing state file: %w", err)
	}
	return cw.n + 4, nil
}

// sections encodes the section count and the sections.
func (f *StateFile) sections() []byte {
	le := binary.LittleEndian
	c := f.Context
	var count uint32
	var out []byte
	if c != nil {
		count++
		var p []byte
		p = le.AppendUint64(p, c.Tokens)
		p = le.AppendUint64(p, c.TranscriptLen)
		p = le.AppendUint64(p, uint64(len(c.Transcript)))
		p = append(p, c.Transcript...)
		out = appendSection(out, tagContext, p)
		if s := c.Sampler; s != nil {
			count++
			p = p[:0]
			p = le.AppendUint64(p, s.Seed)
			p = le.AppendUint64(p, s.Counter)
			p = le.AppendUint32(p, uint32(len(s.Penalties)))
			for _, pc := range s.Penalties {
				p = le.AppendUint32(p, uint32(pc.ID))
				p = le.AppendUint32(p, math.Float32bits(pc.Count))
			}
			out = appendSection(out, tagSampler, p)
		}
	}
	return append(le.AppendUint32(nil, count), out...)
}

func appendSection(out []byte, tag string, payload []byte) []byte {
	out = append(out, tag...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(payload)))
	return append(out, payload...)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// SaveStateFile writes f to path atomically (a temporary file renamed into
// place), so a failure never leaves a half-written file.
func SaveStateFile(path string, f *StateFile) error {
	if err := f.check(path); err != nil {
		return err
	}
	return model.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
}

// LoadStateFile reads the state file at path and refuses it, before reading
// the state itself, when it belongs to another model than want.
func LoadStateFile(path string, want ModelID) (*StateFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer fh.Close()
	return readStateFile(bufio.NewReaderSize(fh, 1<<16), path, &want)
}

// ReadStateFile reads a state file from r; name is used in errors. It checks
// the file's structure and checksum, not which model it belongs to (see
// CheckModel).
func ReadStateFile(r io.Reader, name string) (*StateFile, error) {
	return readStateFile(r, name, nil)
}

// CheckModel returns an ErrWrongModel error naming both models and the file
// when got (from the file called name) is not want.
func CheckModel(name string, got, want ModelID) error {
	if got.Hash != want.Hash {
		return fmt.Errorf("generate: state file %s was saved for model %s, not for the loaded model %s: %w", name, got, want, ErrWrongModel)
	}
	if got.Layers != want.Layers || got.Dim != want.Dim || got.HeadSize != want.HeadSize || got.Vocab != want.Vocab {
		return fmt.Errorf("generate: state file %s: model %s has shape L=%d D=%d N=%d V=%d in the file, but L=%d D=%d N=%d V=%d loaded: %w",
			name, want, got.Layers, got.Dim, got.HeadSize, got.Vocab, want.Layers, want.Dim, want.HeadSize, want.Vocab, ErrBadStateFile)
	}
	return nil
}

// stateReader reads a state file, keeping its CRC and offset for errors.
type stateReader struct {
	r    io.Reader
	name string
	crc  hash.Hash32
	off  int64
	buf  [8]byte
}

func (sr *stateReader) fail(format string, args ...any) error {
	return fmt.Errorf("generate: state file %s: %s: %w", sr.name, fmt.Sprintf(format, args...), ErrBadStateFile)
}

// read fills p, calling a short file truncated.
func (sr *stateReader) read(p []byte, what string) error {
	n, err := io.ReadFull(sr.r, p)
	sr.crc.Write(p[:n])
	sr.off += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return sr.fail("truncated at byte %d while reading %s", sr.off, what)
	}
	if err != nil {
		return fmt.Errorf("generate: state file %s: reading %s: %w", sr.name, what, err)
	}
	return nil
}

func (sr *stateReader) u32(what string) (uint32, error) {
	err := sr.read(sr.buf[:4], what)
	return binary.LittleEndian.Uint32(sr.buf[:4]), err
}

func (sr *stateReader) u64(what string) (uint64, error) {
	err := sr.read(sr.buf[:8], what)
	return binary.LittleEndian.Uint64(sr.buf[:8]), err
}

// bytes reads n bytes without trusting n for the allocation.
func (sr *stateReader) bytes(n uint64, what string) ([]byte, error) {
	var out []byte
	for n > 0 {
		k := min(n, 1<<20)
		start := len(out)
		out = append(out, make([]byte, k)...)
		if err := sr.read(out[start:], what); err != nil {
			return nil, err
		}
		n -= k
	}
	return out, nil
}

func readStateFile(r io.Reader, name string, want *ModelID) (*StateFile, error) {
	sr := &stateReader{r: r, name: name, crc: crc32.New(castagnoli)}
	magic := make([]byte, len(stateFileMagic))
	if err := sr.read(magic, "the magic"); err != nil {
		return nil, err
	}
	if string(magic) != stateFileMagic {
		return nil, sr.fail("not a state file (magic %q, expected %q)", magic, stateFileMagic)
	}
	ver, err := sr.u32("the version")
	if err != nil {
		return nil, err
	}
	if ver == 1 {
		return nil, sr.fail("version 1 state file: it has no model identity and cannot be checked; save the state again")
	}
	if ver != StateFileVersion {
		return nil, sr.fail("version %d, expected %d", ver, StateFileVersion)
	}
	f := &StateFile{}
	m := &f.Model
	if err := sr.read(m.Hash[:], "the model hash"); err != nil {
		return nil, err
	}
	nameLen, err := sr.u32("the model name length")
	if err != nil {
		return nil, err
	}
	if nameLen > maxModelName {
		return nil, sr.fail("model name of %d bytes (at most %d)", nameLen, maxModelName)
	}
	mname, err := sr.bytes(uint64(nameLen), "the model name")
	if err != nil {
		return nil, err
	}
	m.Name = string(mname)
	for _, dst := range []*int{&m.Layers, &m.Dim, &m.HeadSize, &m.Vocab} {
		v, err := sr.u32("the state shape")
		if err != nil {
			return nil, err
		}
		*dst = int(v)
	}
	if err := checkShape(*m); err != nil {
		return nil, sr.fail("model %s: %v", m, err)
	}
	if want != nil {
		if err := CheckModel(name, *m, *want); err != nil {
			return nil, err
		}
	}
	if f.Context, err = sr.sections(m.Vocab); err != nil {
		return nil, err
	}
	count, err := sr.u64("the state value count")
	if err != nil {
		return nil, err
	}
	if want := stateFloats(*m); count != want {
		return nil, sr.fail("%d state values, expected %d for L=%d D=%d N=%d", count, want, m.Layers, m.Dim, m.HeadSize)
	}
	s := &model.State{Layers: m.Layers, Dim: m.Dim, HeadSize: m.HeadSize}
	buf := make([]byte, 4*min(count, floatsPerChunk))
	for left := count; left > 0; {
		n := min(left, floatsPerChunk)
		if err := sr.read(buf[:4*n], "the state values"); err != nil {
			return nil, err
		}
		for i := range n {
			x := math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, sr.fail("state value %d is %v", len(s.Data), x)
			}
			s.Data = append(s.Data, x)
		}
		left -= n
	}
	f.State = s
	sum := sr.crc.Sum32()
	stored, err := sr.u32("the checksum")
	if err != nil {
		return nil, err
	}
	if stored != sum {
		return nil, sr.fail("checksum %08x does not match the content (%08x): the file is corrupt", stored, sum)
	}
	var extra [1]byte
	if n, _ := io.ReadFull(r, extra[:]); n > 0 {
		return nil, sr.fail("unexpected bytes after the checksum at byte %d", sr.off)
	}
	return f, nil
}

// sections reads the section count and the sections.
func (sr *stateReader) sections(vocab int) (*GenContext, error) {
	count, err := sr.u32("the section count")
	if err != nil {
		return nil, err
	}
	if count > 2 {
		return nil, sr.fail("%d sections (at most 2)", count)
	}
	var ctx *GenContext
	for i := range count {
		var tag [4]byte
		if err := sr.read(tag[:], "a section tag"); err != nil {
			return nil, err
		}
		size, err := sr.u64("a section length")
		if err != nil {
			return nil, err
		}
		switch {
		case i == 0 && string(tag[:]) == tagContext:
			if ctx, err = sr.contextSection(size); err != nil {
				return nil, err
			}
		case i == 1 && string(tag[:]) == tagSampler:
			if ctx.Sampler, err = sr.samplerSection(size, vocab); err != nil {
				return nil, err
			}
		default:
			return nil, sr.fail("unexpected section %q at position %d (expected %q, then optionally %q)", tag[:], i+1, tagContext, tagSampler)
		}
	}
	return ctx, nil
}

func (sr *stateReader) contextSection(size uint64) (*GenContext, error) {
	if size < 24 || size-24 > maxTranscript {
		return nil, sr.fail("context section of %d bytes (expected 24 plus at most %d of transcript)", size, maxTranscript)
	}
	c := &GenContext{}
	var err error
	if c.Tokens, err = sr.u64("the context's token count"); err != nil {
		return nil, err
	}
	if c.TranscriptLen, err = sr.u64("the transcript length"); err != nil {
		return nil, err
	}
	stored, err := sr.u64("the stored transcript length")
	if err != nil {
		return nil, err
	}
	if stored != size-24 || (stored != 0 && stored != c.TranscriptLen) {
		return nil, sr.fail("context section of %d bytes stores %d transcript bytes of %d", size, stored, c.TranscriptLen)
	}
	t, err := sr.bytes(stored, "the transcript")
	if err != nil {
		return nil, err
	}
	c.Transcript = string(t)
	return c, nil
}

func (sr *stateReader) samplerSection(size uint64, vocab int) (*SamplerContext, error) {
	if size < 20 || (size-20)%8 != 0 {
		return nil, sr.fail("sampler section of %d bytes (expected 20 plus 8 per penalty)", size)
	}
	s := &SamplerContext{}
	var err error
	if s.Seed, err = sr.u64("the sampler seed"); err != nil {
		return nil, err
	}
	if s.Counter, err = sr.u64("the sampler counter"); err != nil {
		return nil, err
	}
	n, err := sr.u32("the penalty count")
	if err != nil {
		return nil, err
	}
	if uint64(n) != (size-20)/8 {
		return nil, sr.fail("sampler section of %d bytes holds %d penalties, not %d", size, (size-20)/8, n)
	}
	raw, err := sr.bytes(8*uint64(n), "the penalties")
	if err != nil {
		return nil, err
	}
	for i := range int(n) {
		id := binary.LittleEndian.Uint32(raw[8*i:])
		s.Penalties = append(s.Penalties, TokenCount{ID: int(id), Count: math.Float32frombits(binary.LittleEndian.Uint32(raw[8*i+4:]))})
	}
	if err := (&GenContext{Sampler: s}).check(vocab); err != nil {
		return nil, sr.fail("%v", err)
	}
	return s, nil
}
