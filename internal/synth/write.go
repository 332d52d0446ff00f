package synth

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/outfile"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// Options selects what Write produces.
type Options struct {
	// Preset is the model shape.
	Preset Preset
	// Type is the storage type of the main matrices (time-mix key, value,
	// receptance and output, channel-mix key and value) and token_embd; the
	// other tensors get the types a real file of that type has.
	Type gguf.Type
	// Seed selects the random weights; equal options give identical files.
	Seed uint64
	// Progress, when set, is called from Write's goroutine as tensor data is
	// written, with the bytes done and the total.
	Progress func(done, total int64)
}

// Version is written as synthgguf.version and changes whenever the values a
// given (preset, type, seed) produces change, so that cached files are
// regenerated.
const Version = 1

// Keys this package writes besides llama.cpp's.
const (
	KeySeed    = "synthgguf.seed"
	KeyDType   = "synthgguf.dtype"
	KeyVersion = "synthgguf.version"
)

// chunkElems is the number of elements generated per parallel work item.
const chunkElems = 1 << 20

// Write writes the synthetic model described by opt to path through
// internal/outfile: atomically (a temporary file in the same folder, removed
// on error or on SIGINT/SIGTERM), or in place when path is a device or a
// FIFO. It needs memory for a few chunks of about a million elements per
// CPU, whatever the model's size.
func Write(path string, opt Options) error {
	w, err := newWriter(opt)
	if err != nil {
		return err
	}
	if err := outfile.Write(path, func(out io.Writer) error {
		_, err := w.WriteTo(out)
		return err
	}); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// checkPreset rejects shapes that cannot make a valid rwkv7 file.
func checkPreset(p Preset) error {
	c := p.Config
	switch {
	case c.Layers < 1 || c.Dim < 1 || c.FFN < 1 || c.HeadSize < 1:
		return fmt.Errorf("synth: preset %q: layers, dim, ffn and head size must be positive (%s)", p.Name, c)
	case c.Dim%c.HeadSize != 0 || c.Heads != c.Dim/c.HeadSize:
		return fmt.Errorf("synth: preset %q: dim %d, head size %d and heads %d do not agree", p.Name, c.Dim, c.HeadSize, c.Heads)
	case c.RankW < 1 || c.RankA < 1 || c.RankV < 1 || c.RankG < 1:
		return fmt.Errorf("synth: preset %q: LoRA ranks must be positive (%s)", p.Name, c)
	case c.Vocab < 1 || c.Vocab > WorldVocabSize:
		return fmt.Errorf("synth: preset %q: vocabulary %d is outside [1, %d]", p.Name, c.Vocab, WorldVocabSize)
	case !(c.Eps > 0 && c.Eps < 1):
		return fmt.Errorf("synth: preset %q: epsilon %g is not in (0, 1)", p.Name, c.Eps)
	}
	return nil
}

// newWriter builds the GGUF writer: metadata as llama.cpp's converter writes
// it, and every tensor streamed by a fill function.
func newWriter(opt Options) (*gguf.Writer, error) {
	p, t := opt.Preset, opt.Type
	if err := checkPreset(p); err != nil {
		return nil, err
	}
	ftype, err := fileType(t)
	if err != nil {
		return nil, err
	}
	tensors, err := plan(p, t)
	if err != nil {
		return nil, err
	}
	tokens, types, err := Vocab(p.Config.Vocab)
	if err != nil {
		return nil, err
	}
	c := p.Config
	name := c.Name
	if name == "" {
		name = "synthetic RWKV7 " + p.Name
	}
	w := gguf.NewWriter()
	w.SetString(model.KeyArchitecture, model.Architecture)
	w.SetString("general.type", "model")
	w.SetString(model.KeyName, name)
	w.SetUint32("general.file_type", ftype)
	w.SetUint32("general.quantization_version", 2)
	model.SetConfigKeys(w, c)
	w.SetString(model.KeyTokenizer, "rwkv")
	w.SetStrings(model.KeyTokens, tokens)
	w.SetInt32s(model.KeyTokenTypes, types)
	w.SetUint32("tokenizer.ggml.bos_token_id", 0)
	w.SetUint32("tokenizer.ggml.eos_token_id", 0)
	w.SetUint32("tokenizer.ggml.eot_token_id", 261)
	w.SetString("tokenizer.chat_template", "rwkv-world")
	w.SetUint64(KeySeed, opt.Seed)
	w.SetString(KeyDType, strings.ToLower(t.String()))
	w.SetUint32(KeyVersion, Version)

	pr := &progress{fn: opt.Progress}
	for i := range tensors {
		tp := &tensors[i]
		if err := w.AddTensorFunc(tp.name, tp.typ, tp.dims, func(out io.Writer) error {
			return writeTensor(out, tp, opt.Seed, pr)
		}); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	for _, ti := range w.Tensors() {
		pr.total += int64(ti.Size)
	}
	return w, nil
}

// progress counts written tensor bytes for Options.Progress.
type progress struct {
	fn          func(done, total int64)
	done, total int64
}

func (p *progress) add(n int) {
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}

// writeTensor streams one tensor's data, generated in chunks of rows.
func writeTensor(out io.Writer, tp *tensorPlan, seed uint64, pr *progress) error {
	cols, rows := int(tp.dims[0]), tp.rows()
	rowBytes, err := tp.typ.RowBytes(cols)
	if err != nil {
		return err
	}
	ts := tensorSeed(seed, tp.seedName)
	perChunk := max(1, chunkElems/cols)
	chunks := (rows + perChunk - 1) / perChunk
	gen := func(c int, dst []byte) ([]byte, error) {
		lo, hi := c*perChunk, min((c+1)*perChunk, rows)
		dst = growBytes(dst, (hi-lo)*rowBytes)
		row := make([]float32, cols) // at most 64 KiB, for a million elements
		for r := lo; r < hi; r++ {
			g := rowStream(ts, r)
			tp.rc.fillRow(&g, r, row)
			if err := gguf.QuantizeRow(tp.typ, row, dst[(r-lo)*rowBytes:(r-lo+1)*rowBytes]); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	return streamChunks(out, chunks, gen, pr.add)
}

func growBytes(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// chunkResult is one generated chunk, or the error that stopped it.
type chunkResult struct {
	buf []byte
	err error
}

type chunkJob struct {
	c   int
	out chan chunkResult // capacity 1: a worker never blocks on it
}

// streamChunks generates chunks 0..n-1 with gen on up to GOMAXPROCS
// goroutines and writes them to w in order, calling wrote after each. At
// most about 2·GOMAXPROCS chunks are held at a time. gen may reuse the
// buffer it is given.
func streamChunks(w io.Writer, n int, gen func(c int, buf []byte) ([]byte, error), wrote func(int)) error {
	workers := runtime.GOMAXPROCS(0)
	if n <= 1 || workers <= 1 {
		var buf []byte
		for c := 0; c < n; c++ {
			var err error
			if buf, err = gen(c, buf); err != nil {
				return err
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
			wrote(len(buf))
		}
		return nil
	}
	workers = min(workers, n)
	depth := 2 * workers
	queue := make(chan chan chunkResult, depth)
	jobs := make(chan chunkJob)
	free := make(chan []byte, depth+workers)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1 + workers)
	go func() { // producer: queue the result slots in order, hand out the jobs
		defer wg.Done()
		defer close(jobs)
		defer close(queue)
		for c := 0; c < n; c++ {
			out := make(chan chunkResult, 1)
			select {
			case queue <- out:
			case <-done:
				return
			}
			select {
			case jobs <- chunkJob{c: c, out: out}:
			case <-done:
				return
			}
		}
	}()
	for i := 0; i < workers; i++ {
		go func() {
			defer wg.Done()
			for j := range jobs {
				var buf []byte
				select {
				case buf = <-free:
				default:
				}
				buf, err := gen(j.c, buf)
				j.out <- chunkResult{buf: buf, err: err}
			}
		}()
	}
	var err error
	for out := range queue {
		res := <-out
		if res.err == nil {
			_, res.err = w.Write(res.buf)
		}
		if res.err != nil {
			err = res.err
			break
		}
		wrote(len(res.buf))
		select {
		case free <- res.buf:
		default:
		}
	}
	close(done)
	wg.Wait()
	return err
}
