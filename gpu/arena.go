package gpu

import (
	"fmt"
	"sort"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// An arena is one GPU buffer holding the weight planes of several matrices,
// bound as `W: array<u32>` by the kernels that read them. It never exceeds
// the device's storage-binding limit; a matrix too big for one arena is
// split by rows into parts that live in different arenas.
type arena struct {
	label string
	words uint64
	buf   *Buffer
	// pending planes, written at upload
	planes []plane
}

type plane struct {
	word uint64
	data []byte
}

// matPart is a row range of a matrix placed in an arena: the kernels see a
// matrix of rows × k starting at rowLo of the original.
type matPart struct {
	fmt   *weightFormat
	name  string
	rowLo int
	rows  int
	k     int
	q, s  uint32 // word offsets of the planes in the arena
	arena *arena
}

// arenaPlanner packs matrices into arenas of at most limit bytes.
type arenaPlanner struct {
	limit  uint64
	arenas []*arena
	cur    *arena
	label  string
}

func newArenaPlanner(label string, limit uint64) *arenaPlanner {
	return &arenaPlanner{label: label, limit: limit}
}

// planeWords is the size of a plane rounded up to 16 bytes.
func planeWords(n int) uint64 { return (uint64(n) + 15) / 16 * 4 }

// add places matrix m (or its row parts) and returns the parts in row order.
func (p *arenaPlanner) add(m *model.Matrix) ([]matPart, error) {
	f, err := formatOf(m)
	if err != nil {
		return nil, err
	}
	rowBlocks := m.RowBytes / m.Type.BlockBytes()
	// Bytes of one row's planes (quants + scales), rounded per part below.
	q1, s1 := f.repack(m.Row(0), rowBlocks)
	rowBytes := uint64(len(q1) + len(s1))
	if rowBytes+32 > p.limit {
		return nil, fmt.Errorf("gpu: one row of %s (%d bytes) exceeds the storage binding limit %d", m.Name, rowBytes, p.limit)
	}
	need := func(r int) uint64 { return planeWords(len(q1)*r)*4 + planeWords(len(s1)*r)*4 }
	var parts []matPart
	for lo := 0; lo < m.Rows; {
		rows := m.Rows - lo
		// Keep a matrix whole when an empty arena would hold it.
		if p.cur == nil || (need(rows) > p.free() && need(rows) <= p.limit) {
			p.newArena()
		}
		rows = sort.Search(rows+1, func(r int) bool { return need(r) > p.free() }) - 1
		if rows < 1 {
			p.newArena()
			continue
		}
		src := m.Data[lo*m.RowBytes : (lo+rows)*m.RowBytes]
		q, s := f.repack(src, rows*rowBlocks)
		part := matPart{fmt: f, name: m.Name, rowLo: lo, rows: rows, k: m.Cols, arena: p.cur}
		part.q = uint32(p.cur.words)
		p.cur.planes = append(p.cur.planes, plane{word: p.cur.words, data: q})
		p.cur.words += planeWords(len(q))
		part.s = uint32(p.cur.words)
		if len(s) > 0 {
			p.cur.planes = append(p.cur.planes, plane{word: p.cur.words, data: s})
			p.cur.words += planeWords(len(s))
		}
		parts = append(parts, part)
		lo += rows
	}
	return parts, nil
}

func (p *arenaPlanner) free() uint64 { return p.limit - p.cur.words*4 }

func (p *arenaPlanner) newArena() {
	p.cur = &arena{label: fmt.Sprintf("%s#%d", p.label, len(p.arenas))}
	p.arenas = append(p.arenas, p.cur)
}

// upload creates the arenas' buffers and writes their planes.
func (p *arenaPlanner) upload(d *Device) error {
	for _, a := range p.arenas {
		buf, err := d.NewBuffer(a.label, max(a.words*4, 16))
		if err != nil {
			return fmt.Errorf("gpu: weight arena %s: %w", a.label, err)
		}
		a.buf = buf
		for _, pl := range a.planes {
			data := pl.data
			if len(data)%4 != 0 {
				data = append(append([]byte(nil), data...), make([]byte, 4-len(data)%4)...)
			}
			if err := d.Write(buf, pl.word*4, data); err != nil {
				return fmt.Errorf("gpu: weight arena %s: %w", a.label, err)
			}
		}
		a.planes = nil
	}
	return nil
}

// totalBytes is the GPU memory of the planner's arenas.
func (p *arenaPlanner) totalBytes() uint64 {
	var n uint64
	for _, a := range p.arenas {
		n += a.words * 4
	}
	return n
}
