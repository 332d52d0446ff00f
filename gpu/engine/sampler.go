package engine

import (
	"fmt"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"math"
	"strconv"

	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// SamplerInvalidToken is the id a Sampler writes for a row it cannot sample:
// a NaN or +Inf logit, or no finite logit left after the bans. That row's
// state is left unchanged.
const SamplerInvalidToken = 0xffffffff

// Sampler runs BlinkDL's RWKV-7 sampler (model.Sampling; shaders/sample.wgsl)
// on the device for every row of a decode step. It holds a number of slots,
// each a sequence's sampler: its parameters and its state (decayed counts,
// seen tokens, penalties, the RNG counter), all in device buffers, so a
// chain of recorded steps samples and updates the state without any host
// write. It draws the same tokens as cpuref.SamplerState with the same
// seed, up to float32 rounding: a draw can differ only when u falls within
// rounding of a boundary of the cumulative distribution, or a top-p cumulative
// sum within rounding of top-p.
//
// Typical use, per decode step of a batch whose row i belongs to slot
// slots[i]:
//
//	s, _ := gpu.NewSampler(dev, vocab, maxSequences, maxRows)
//	s.Configure(slot, params)             // per sequence, once (host write)
//	s.Record(rec, logits, logitsOff, slots, ids, idsOff)
//	rec.Submit()                           // ids[idsOff+i] = row i's token
//
// Record uses a parameter buffer cached by content (Device.Params) for each
// distinct (rows, slots, offsets): a steady batch composition costs nothing
// per step; each new composition adds a small buffer for the device's
// lifetime. A Sampler is not safe for concurrent use.
type Sampler struct {
	dev          *gpu.Device
	vocab, slots int
	maxRows      int
	seenWords    int
	k            *gpu.Kernel
	params       *gpu.Buffer // [slots] samplerSlotParams
	occ, pen     *gpu.Buffer // [slots, vocab] f32
	seen         *gpu.Buffer // [slots, seenWords] u32
	counters     *gpu.Buffer // [slots] u32
	noProbs      *gpu.Buffer // 4-byte stand-in for the probs binding
	scratch      *gpu.Buffer // one slot's parameters and state, for CopySlot
}

// samplerSlotParams mirrors SlotParams of shaders/sample.wgsl.
type samplerSlotParams struct {
	Temperature float32 // ≤ 0: greedy
	InvTemp     float32 // 1/temperature
	TopP        float32 // ≥ 1: off
	TopK        uint32  // 0 or ≥ vocab: off
	Presence    float32
	Frequency   float32
	Decay       float32
	SeedLo      uint32
	SeedHi      uint32
	Pad0        uint32
	Ban         [model.MaxBanned]uint32 // banned ids; 0xffffffff = none
}

const slotParamsBytes = 18 * 4

func (p samplerSlotParams) words() []uint32 {
	w := []uint32{
		math.Float32bits(p.Temperature), math.Float32bits(p.InvTemp), math.Float32bits(p.TopP), p.TopK,
		math.Float32bits(p.Presence), math.Float32bits(p.Frequency), math.Float32bits(p.Decay),
		p.SeedLo, p.SeedHi, p.Pad0,
	}
	return append(w, p.Ban[:]...)
}

func slotParamsFrom(s model.Sampling) samplerSlotParams {
	p := samplerSlotParams{
		Temperature: s.Temperature,
		TopP:        s.TopP,
		TopK:        uint32(s.TopK),
		Presence:    s.PresencePenalty,
		Frequency:   s.FrequencyPenalty,
		Decay:       s.PenaltyDecay,
		SeedLo:      uint32(s.Seed),
		SeedHi:      uint32(s.Seed >> 32),
	}
	if s.Temperature > 0 {
		p.InvTemp = float32(1 / float64(s.Temperature))
	}
	for i := range p.Ban {
		p.Ban[i] = SamplerInvalidToken
	}
	for i, id := range s.Ban {
		p.Ban[i] = uint32(id)
	}
	return p
}

// Flags of sampleParams.
const (
	sampleUpdate = 1 // update the slot's state
	sampleProbs  = 2 // write the final distribution
	sampleBulk   = 4 // logits row 0, slot RowSlots[0], Draws per workgroup, no update
)

// bulkDraws is the number of draws one workgroup makes in RecordDraws: the
// distribution is computed once and drawn from this many times.
const bulkDraws = 64

// sampleParams mirrors SampleParams of shaders/sample.wgsl (row_slots holds
// MAXROWS4 vec4s: the slot of row r at word r).
type sampleParams struct {
	V           uint32 // vocabulary
	Rows        uint32 // workgroups in this dispatch
	LogitsOff   uint32 // logits offset of row 0 (floats); rows follow every V
	IDsOff      uint32 // ids offset receiving row 0's token (bulk: draw 0's)
	ProbsOff    uint32 // probs offset of row 0 (floats)
	Flags       uint32 // sampleUpdate | sampleProbs | sampleBulk
	CounterBase uint32 // bulk: draw j uses counter CounterBase + j
	SeenWords   uint32 // u32 words per slot in seen
	Draws       uint32 // bulk: draws per workgroup
	Total       uint32 // bulk: draws in this dispatch
	ChosenOff   uint32 // ids offset of the per-slot chosen tokens (SamplerInvalidToken: none)
	Pad1        uint32
	RowSlots    []uint32 // row_slots: padded to 4·MAXROWS4 words
}

func (p sampleParams) words(maxRows4 int) []uint32 {
	w := []uint32{p.V, p.Rows, p.LogitsOff, p.IDsOff, p.ProbsOff, p.Flags, p.CounterBase, p.SeenWords, p.Draws, p.Total, p.ChosenOff, 0}
	slots := make([]uint32, 4*maxRows4)
	copy(slots, p.RowSlots)
	return append(w, slots...)
}

// Sampler limits.
const (
	MaxSamplerRows  = 4096    // rows of one Record (the uniform holds their slots)
	MaxSamplerVocab = 1 << 24 // counts are exact float32 integers below 2²⁴
)

// samplerWG is the workgroup size for a vocabulary: 256, smaller for small
// vocabularies (at least 8 ids per invocation, at least 32 invocations).
func samplerWG(vocab int) int {
	wg := 32
	for wg < 256 && wg*8 < vocab {
		wg *= 2
	}
	return wg
}

// SamplerBytes is the device memory NewSampler takes for slots samplers of
// a vocabulary of vocab tokens.
func SamplerBytes(vocab, slots int) uint64 {
	per := samplerSlotBytes(vocab)
	return uint64(slots)*per + per + 4 // plus the copy scratch and the probs stand-in
}

// samplerSlotBytes is one slot's sampler: parameters, penalty counts and
// penalties, seen bits, counter.
func samplerSlotBytes(vocab int) uint64 {
	return uint64(slotParamsBytes + 2*vocab*4 + (vocab+31)/32*4 + 4)
}

// NewSampler allocates slots samplers for a vocabulary of vocab tokens,
// sampling up to maxRows rows per Record. Every slot starts greedy with no
// penalties (Configure sets its parameters).
func NewSampler(dev *gpu.Device, vocab, slots, maxRows int) (*Sampler, error) {
	switch {
	case vocab < 1 || vocab > MaxSamplerVocab:
		return nil, fmt.Errorf("sampler: vocabulary %d, want 1..%d", vocab, MaxSamplerVocab)
	case slots < 1:
		return nil, fmt.Errorf("sampler: %d slots, want at least 1", slots)
	case maxRows < 1 || maxRows > MaxSamplerRows:
		return nil, fmt.Errorf("sampler: maxRows %d, want 1..%d", maxRows, MaxSamplerRows)
	}
	if need := uint64(slots) * uint64(vocab) * 4; need > dev.MaxBindingSize() {
		return nil, fmt.Errorf("sampler: %d slots × %d tokens of state need %s in one binding, above this device's %s: use fewer slots",
			slots, vocab, mib(need), mib(dev.MaxBindingSize()))
	}
	s := &Sampler{dev: dev, vocab: vocab, slots: slots, maxRows: maxRows, seenWords: (vocab + 31) / 32}
	src, err := shaders.Source("sample.wgsl", map[string]string{
		"WG":       strconv.Itoa(samplerWG(vocab)),
		"MAXROWS4": strconv.Itoa(s.maxRows4()),
	})
	if err != nil {
		return nil, err
	}
	if s.k, err = dev.Kernel("sample", src, "sample"); err != nil {
		return nil, err
	}
	greedy := slotParamsFrom(model.Sampling{}).words()
	var params []uint32
	for i := 0; i < slots; i++ {
		params = append(params, greedy...)
	}
	if s.params, err = dev.NewBufferU32("sampler params", params); err != nil {
		return nil, err
	}
	alloc := func(label string, bytes int) *gpu.Buffer {
		if err != nil {
			return nil
		}
		var b *gpu.Buffer
		b, err = dev.NewBuffer(label, uint64(bytes))
		return b
	}
	s.occ = alloc("sampler occ", slots*vocab*4)
	s.pen = alloc("sampler pen", slots*vocab*4)
	s.seen = alloc("sampler seen", slots*s.seenWords*4)
	s.counters = alloc("sampler counters", slots*4)
	s.noProbs = alloc("sampler no probs", 4)
	s.scratch = alloc("sampler copy scratch", slotParamsBytes+2*vocab*4+s.seenWords*4+4)
	if err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

func (s *Sampler) maxRows4() int { return (s.maxRows + 3) / 4 }

// Vocab is the vocabulary size (the length of a logits row).
func (s *Sampler) Vocab() int { return s.vocab }

// Slots is the number of samplers (sequences) the Sampler holds.
func (s *Sampler) Slots() int { return s.slots }

// MaxRows is the most rows one Record samples.
func (s *Sampler) MaxRows() int { return s.maxRows }

func (s *Sampler) checkSlot(what string, slot int) error {
	if slot < 0 || slot >= s.slots {
		return fmt.Errorf("sampler: %s slot %d outside [0, %d)", what, slot, s.slots)
	}
	return nil
}

// Configure validates p and makes it slot's sampler, with a fresh state (no
// tokens seen, counter 0). It writes from the host: the change is ordered
// before the next Submit.
func (s *Sampler) Configure(slot int, p model.Sampling) error {
	if err := s.checkSlot("configured", slot); err != nil {
		return err
	}
	if err := p.Validate(s.vocab); err != nil {
		return err
	}
	d := s.dev
	V := uint64(s.vocab)
	writes := []struct {
		b    *gpu.Buffer
		off  uint64
		data []byte
	}{
		{s.params, uint64(slot) * slotParamsBytes, gpu.U32Bytes(slotParamsFrom(p).words())},
		{s.occ, uint64(slot) * V * 4, make([]byte, V*4)},
		{s.pen, uint64(slot) * V * 4, make([]byte, V*4)},
		{s.seen, uint64(slot*s.seenWords) * 4, make([]byte, s.seenWords*4)},
		{s.counters, uint64(slot) * 4, make([]byte, 4)},
	}
	for _, w := range writes {
		if err := d.Write(w.b, w.off, w.data); err != nil {
			return fmt.Errorf("sampler: configuring slot %d: %w", slot, err)
		}
	}
	return nil
}

// CopySlot records copying slot src's sampler (parameters and state) to slot
// dst, for a forked sequence: both then draw the same tokens from the same
// logits until one is reconfigured.
func (s *Sampler) CopySlot(r *gpu.Recorder, src, dst int) error {
	if err := s.checkSlot("source", src); err != nil {
		return err
	}
	if err := s.checkSlot("destination", dst); err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	// WebGPU copies between two buffers only: go through the scratch.
	V := uint64(s.vocab) * 4
	W := uint64(s.seenWords) * 4
	parts := []struct {
		b    *gpu.Buffer
		size uint64
	}{{s.params, slotParamsBytes}, {s.occ, V}, {s.pen, V}, {s.seen, W}, {s.counters, 4}}
	var off uint64
	for _, p := range parts {
		r.Copy(p.b, uint64(src)*p.size, s.scratch, off, p.size)
		off += p.size
	}
	off = 0
	for _, p := range parts {
		r.Copy(s.scratch, off, p.b, uint64(dst)*p.size, p.size)
		off += p.size
	}
	return r.Err()
}

// Record records sampling every row i of logits (rows of Vocab floats from
// float offset logitsOffsetFloats) with slot rowSlots[i]'s sampler: the
// chosen id goes to ids[idsOffsetWords+i] (SamplerInvalidToken for an
// invalid row) and the slot's state advances (counts, seen, counter). A slot
// may appear once per Record.
func (s *Sampler) Record(r *gpu.Recorder, logits *gpu.Buffer, logitsOffsetFloats int, rowSlots []int, ids *gpu.Buffer, idsOffsetWords int) error {
	return s.record(r, logits, logitsOffsetFloats, rowSlots, ids, idsOffsetWords, nil, 0, -1)
}

// RecordChosen is Record that also writes each row's token as its slot's
// chosen token, ids[chosenOffsetWords + slot] (the engine's Continue steps
// feed it), unless the row is invalid.
func (s *Sampler) RecordChosen(r *gpu.Recorder, logits *gpu.Buffer, logitsOffsetFloats int, rowSlots []int, ids *gpu.Buffer, idsOffsetWords, chosenOffsetWords int) error {
	return s.record(r, logits, logitsOffsetFloats, rowSlots, ids, idsOffsetWords, nil, 0, chosenOffsetWords)
}

// RecordWithProbs is Record that also writes each row's final distribution
// (the probabilities the token is drawn from, zero for the tokens dropped;
// one-hot for a greedy row; all zero for an invalid row) to probs, row i at
// float offset probsOffsetFloats + i·Vocab. For tests and diagnostics.
func (s *Sampler) RecordWithProbs(r *gpu.Recorder, logits *gpu.Buffer, logitsOffsetFloats int, rowSlots []int, ids *gpu.Buffer, idsOffsetWords int, probs *gpu.Buffer, probsOffsetFloats int) error {
	if probs == nil {
		return fmt.Errorf("sampler: nil probs buffer")
	}
	return s.record(r, logits, logitsOffsetFloats, rowSlots, ids, idsOffsetWords, probs, probsOffsetFloats, -1)
}

// record is Record with optional probabilities (probs nil: none) and chosen
// tokens (chosenOff < 0: none).
func (s *Sampler) record(r *gpu.Recorder, logits *gpu.Buffer, logitsOff int, rowSlots []int, ids *gpu.Buffer, idsOff int, probs *gpu.Buffer, probsOff int, chosenOff int) error {
	rows := len(rowSlots)
	if rows < 1 || rows > s.maxRows {
		return fmt.Errorf("sampler: %d rows, want 1..%d (maxRows)", rows, s.maxRows)
	}
	used := make(map[int]int, rows)
	slots := make([]uint32, rows)
	for i, slot := range rowSlots {
		if err := s.checkSlot(fmt.Sprintf("row %d's", i), slot); err != nil {
			return err
		}
		if j, dup := used[slot]; dup {
			return fmt.Errorf("sampler: rows %d and %d both use slot %d (a slot's state advances once per Record)", j, i, slot)
		}
		used[slot] = i
		slots[i] = uint32(slot)
	}
	p := sampleParams{V: uint32(s.vocab), Rows: uint32(rows), Flags: sampleUpdate, SeenWords: uint32(s.seenWords), RowSlots: slots, ChosenOff: SamplerInvalidToken}
	if chosenOff >= 0 {
		p.ChosenOff = uint32(chosenOff)
	}
	if err := s.locate(&p, logits, logitsOff, rows*s.vocab, ids, idsOff, rows, probs, probsOff); err != nil {
		return err
	}
	return s.dispatch(r, p, logits, ids, probs)
}

// RecordDraws records n draws from one distribution, for tests: the logits
// row at logitsOffsetFloats sampled with slot's parameters and current state
// (which is not changed), draw j using counter firstCounter + j and writing
// its id to ids[idsOffsetWords + j]. Draw j equals what slot's sampler would
// draw after firstCounter + j tokens with the same logits and penalties.
// Each workgroup computes the distribution once and makes 64 draws from it
// with the same code as Record.
func (s *Sampler) RecordDraws(r *gpu.Recorder, logits *gpu.Buffer, logitsOffsetFloats int, slot int, firstCounter uint32, n int, ids *gpu.Buffer, idsOffsetWords int) error {
	if err := s.checkSlot("drawing", slot); err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("sampler: %d draws, want at least 1", n)
	}
	if uint64(firstCounter)+uint64(n) > 1<<32 {
		return fmt.Errorf("sampler: counters %d + %d draws pass 2³²", firstCounter, n)
	}
	perDispatch := int(s.dev.Limits().MaxComputeWorkgroupsPerDimension) * bulkDraws
	for done := 0; done < n; done += perDispatch {
		draws := min(n-done, perDispatch)
		p := sampleParams{V: uint32(s.vocab), Rows: uint32((draws + bulkDraws - 1) / bulkDraws), Flags: sampleBulk, ChosenOff: SamplerInvalidToken,
			CounterBase: firstCounter + uint32(done), SeenWords: uint32(s.seenWords), Draws: bulkDraws, Total: uint32(draws),
			RowSlots: []uint32{uint32(slot)}}
		if err := s.locate(&p, logits, logitsOffsetFloats, s.vocab, ids, idsOffsetWords+done, draws, nil, 0); err != nil {
			return err
		}
		if err := s.dispatch(r, p, logits, ids, nil); err != nil {
			return err
		}
	}
	return nil
}

// locate checks that the logits, ids and probs ranges lie inside their
// buffers and fills in the offsets.
func (s *Sampler) locate(p *sampleParams, logits *gpu.Buffer, logitsOff, logitsFloats int, ids *gpu.Buffer, idsOff, idsWords int, probs *gpu.Buffer, probsOff int) error {
	check := func(what string, b *gpu.Buffer, off, n int) error {
		if b == nil {
			return fmt.Errorf("sampler: nil %s buffer", what)
		}
		if off < 0 || uint64(off+n)*4 > b.Size() || off+n > math.MaxUint32 {
			return fmt.Errorf("sampler: %s [%d, %d) (4-byte elements) outside buffer %s", what, off, off+n, b)
		}
		return nil
	}
	if err := check("logits", logits, logitsOff, logitsFloats); err != nil {
		return err
	}
	if err := check("ids", ids, idsOff, idsWords); err != nil {
		return err
	}
	p.LogitsOff, p.IDsOff = uint32(logitsOff), uint32(idsOff)
	if probs != nil {
		if err := check("probs", probs, probsOff, int(p.Rows)*s.vocab); err != nil {
			return err
		}
		p.ProbsOff = uint32(probsOff)
		p.Flags |= sampleProbs
	}
	return nil
}

func (s *Sampler) dispatch(r *gpu.Recorder, p sampleParams, logits, ids, probs *gpu.Buffer) error {
	ub, err := s.dev.Params(p.words(s.maxRows4())...)
	if err != nil {
		return err
	}
	if probs == nil {
		probs = s.noProbs
	}
	r.Dispatch(s.k, []gpu.Binding{{Buf: logits}, {Buf: s.params}, {Buf: s.occ}, {Buf: s.pen}, {Buf: s.seen}, {Buf: s.counters},
		{Buf: ids}, {Buf: probs}, {Buf: ub}}, p.Rows, 1, 1)
	return r.Err()
}

// SamplerSlotState is a slot's sampler state as read back from the device.
type SamplerSlotState struct {
	Occ     []float32 // [V] decayed counts
	Seen    []bool    // [V] sampled at least once
	Counter uint32    // tokens sampled since configured
}

// ReadState reads slot's state back (it waits for the GPU).
func (s *Sampler) ReadState(slot int) (SamplerSlotState, error) {
	if err := s.checkSlot("read", slot); err != nil {
		return SamplerSlotState{}, err
	}
	occ, err := s.dev.ReadF32(s.occ, uint64(slot*s.vocab)*4, s.vocab)
	if err != nil {
		return SamplerSlotState{}, err
	}
	bits, err := s.dev.ReadU32(s.seen, uint64(slot*s.seenWords)*4, s.seenWords)
	if err != nil {
		return SamplerSlotState{}, err
	}
	c, err := s.dev.ReadU32(s.counters, uint64(slot)*4, 1)
	if err != nil {
		return SamplerSlotState{}, err
	}
	seen := make([]bool, s.vocab)
	for i := range seen {
		seen[i] = bits[i/32]>>(i%32)&1 == 1
	}
	return SamplerSlotState{Occ: occ, Seen: seen, Counter: c[0]}, nil
}

// Release frees the sampler's buffers.
func (s *Sampler) Release() {
	for _, b := range []*gpu.Buffer{s.params, s.occ, s.pen, s.seen, s.counters, s.noProbs, s.scratch} {
		b.Release()
	}
}

// mib formats a byte count in MiB for messages.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
