package engine

import (
	"fmt"
	"sort"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/gpu"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// An arena is one GPU buffer holding the weight planes of several matrices,
// bound as `W: array<u32>` by the kernels that read them. It never exceeds
// the device's storage-binding limit; a matrix too big for one arena is
// split by rows into parts that live in different arenas.
type arena struct {
	label string
	words uint64
	buf   *gpu.Buffer
	parts []*matPart // placed here, uploaded by upload
}

// matPart is a row range of a matrix placed in an arena: the kernels see a
// matrix of rows × k starting at rowLo of the original. Its quants plane
// holds qRow bytes per row and its scales plane sRow (repacked layout).
type matPart struct {
	fmt        *weightFormat
	m          *model.Matrix
	rowLo      int
	rows       int
	k          int
	q, s       uint32 // word offsets of the planes in the arena
	qRow, sRow int
	arena      *arena
}

// arenaPlanner packs matrices into arenas of at most limit bytes. Planning
// reads only one row of each matrix (to learn its repacked row size);
// upload repacks and writes the rows in bounded chunks.
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
	q1, s1 := f.repack(m.Row(0), rowBlocks)
	qRow, sRow := len(q1), len(s1)
	if uint64(qRow+sRow)+32 > p.limit {
		return nil, fmt.Errorf("gpu: one row of %s (%d bytes) exceeds the storage binding limit %d", m.Name, qRow+sRow, p.limit)
	}
	need := func(r int) uint64 { return planeWords(qRow*r)*4 + planeWords(sRow*r)*4 }
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
		part := &matPart{fmt: f, m: m, rowLo: lo, rows: rows, k: m.Cols, qRow: qRow, sRow: sRow, arena: p.cur}
		part.q = uint32(p.cur.words)
		p.cur.words += planeWords(qRow * rows)
		part.s = uint32(p.cur.words)
		p.cur.words += planeWords(sRow * rows)
		p.cur.parts = append(p.cur.parts, part)
		parts = append(parts, *part)
		lo += rows
	}
	return parts, nil
}

func (p *arenaPlanner) free() uint64 { return p.limit - p.cur.words*4 }

func (p *arenaPlanner) newArena() {
	p.cur = &arena{label: fmt.Sprintf("%s#%d", p.label, len(p.arenas))}
	p.arenas = append(p.arenas, p.cur)
}

// uploadChunk is the source bytes repacked and written at once.
const uploadChunk = 4 << 20

// upload creates the arenas' buffers and streams the parts' rows into
// them, repacking uploadChunk source bytes at a time; st bounds the bytes
// waiting in the device's staging memory.
func (p *arenaPlanner) upload(d *gpu.Device, st *stager) error {
	for _, a := range p.arenas {
		buf, err := d.NewBuffer(a.label, max(a.words*4, 16))
		if err != nil {
			return fmt.Errorf("gpu: weight arena %s: %w", a.label, err)
		}
		a.buf = buf
		for _, part := range a.parts {
			if err := part.upload(d, st); err != nil {
				return fmt.Errorf("gpu: weight arena %s: %s: %w", a.label, part.m.Name, err)
			}
		}
		a.parts = nil
	}
	return nil
}

// upload writes the part's rows into its arena in chunks of whole rows (a
// multiple of 4 rows, so that every write starts on a word boundary).
func (part *matPart) upload(d *gpu.Device, st *stager) error {
	m := part.m
	rowBlocks := m.RowBytes / m.Type.BlockBytes()
	chunk := max(4, uploadChunk/m.RowBytes/4*4)
	for lo := 0; lo < part.rows; lo += chunk {
		hi := min(lo+chunk, part.rows)
		src := m.Data[(part.rowLo+lo)*m.RowBytes : (part.rowLo+hi)*m.RowBytes]
		q, s := part.fmt.repack(src, (hi-lo)*rowBlocks)
		for _, pl := range []struct {
			word uint32
			off  int
			data []byte
		}{{part.q, lo * part.qRow, q}, {part.s, lo * part.sRow, s}} {
			if len(pl.data) == 0 {
				continue
			}
			data := pl.data
			if len(data)%4 != 0 { // the plane's last rows: it is padded to 16 bytes
				data = append(append([]byte(nil), data...), make([]byte, 4-len(data)%4)...)
			}
			if err := st.write(d, part.arena.buf, uint64(pl.word)*4+uint64(pl.off), data); err != nil {
				return err
			}
		}
		// The rows are on their way to the device (written into wgpu's
		// staging memory): let their mapped pages go.
		if st.file != nil {
			st.file.Evict(src)
		}
	}
	return nil
}

// totalBytes is the GPU memory of the planner's arenas.
func (p *arenaPlanner) totalBytes() uint64 {
	var n uint64
	for _, a := range p.arenas {
		n += max(a.words*4, 16)
	}
	return n
}

// release frees the arenas' buffers.
func (p *arenaPlanner) release() {
	for _, a := range p.arenas {
		a.buf.Release()
	}
}

// stager bounds the host memory of an upload: wgpu copies each write into
// staging memory that it frees only after the next submission completes,
// so after every budget bytes the device is flushed.
type stager struct {
	budget  uint64
	pending uint64
	total   uint64
	file    *gguf.File // the weights' file: uploaded rows are evicted from memory
}

func (s *stager) write(d *gpu.Device, buf *gpu.Buffer, off uint64, data []byte) error {
	if err := d.Write(buf, off, data); err != nil {
		return err
	}
	s.pending += uint64(len(data))
	s.total += uint64(len(data))
	if s.pending >= s.budget {
		s.pending = 0
		return d.Flush()
	}
	return nil
}
