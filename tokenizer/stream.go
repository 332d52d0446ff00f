package tokenizer

import "fmt"

// StreamDecoder turns a stream of token ids into bytes that are safe to print
// as they come. A token may end inside a UTF-8 sequence (486 World tokens are
// not valid UTF-8 on their own, e.g. id 3319 = F0 9F, the head of an emoji),
// so the decoder holds back an incomplete trailing UTF-8 sequence (at most 3
// bytes) until it is completed. Bytes that can never become part of valid
// UTF-8 are released as they are (raw, not replaced by U+FFFD), so the
// concatenation of every Add result and the final Flush equals Decode of all
// the ids. A StreamDecoder is not safe for concurrent use; the Tokenizer it
// came from may be shared.
type StreamDecoder struct {
	t       *Tokenizer
	pending [utfMax - 1]byte
	n       int
}

const utfMax = 4

// NewStreamDecoder returns a StreamDecoder with nothing held back.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Add decodes one more id (control and unknown tokens decode to nothing, as
// in Decode) and returns the bytes that can be printed now: everything
// decoded so far except an incomplete UTF-8 sequence at the end, which is
// held back. If the whole stream is valid UTF-8, every result is valid UTF-8.
// The returned slice is newly allocated. An id out of range is an error and
// leaves the decoder unchanged.
func (d *StreamDecoder) Add(id int) ([]byte, error) {
	t := d.t
	if id < 0 || id >= len(t.types) {
		return nil, fmt.Errorf("tokenizer: stream decode: id %d out of range [0, %d)", id, len(t.types))
	}
	var p []byte
	if !t.types[id].silent() {
		p = t.piece(int32(id))
	}
	buf := make([]byte, 0, d.n+len(p))
	buf = append(buf, d.pending[:d.n]...)
	buf = append(buf, p...)
	keep := incompleteTail(buf)
	d.n = copy(d.pending[:], buf[len(buf)-keep:])
	return buf[: len(buf)-keep : len(buf)-keep], nil
}

// Flush returns the bytes held back (possibly none: nil) and resets the
// decoder, for the end of the stream.
func (d *StreamDecoder) Flush() []byte {
	if d.n == 0 {
		return nil
	}
	out := append([]byte(nil), d.pending[:d.n]...)
	d.n = 0
	return out
}

// Pending returns how many bytes are held back.
func (d *StreamDecoder) Pending() int { return d.n }

// incompleteTail returns the length (0 to 3) of the proper prefix of a valid
// UTF-8 sequence at the end of b, which might still be completed by the bytes
// that follow.
func incompleteTail(b []byte) int {
	// The sequence starts at the last non-continuation byte among the last 3.
	for k := 1; k <= utfMax-1 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c&0xC0 == 0x80 {
			continue // continuation byte: look further back
		}
		need := seqLen(c)
		if need <= k {
			return 0 // ASCII, an invalid lead byte, or a complete sequence
		}
		// Check the continuation bytes present so far, including the
		// restricted second byte of E0, ED, F0 and F4.
		lo, hi := secondRange(c)
		for j := 1; j < k; j++ {
			x := b[len(b)-k+j]
			if j == 1 && (x < lo || x > hi) {
				return 0
			}
			if x&0xC0 != 0x80 {
				return 0
			}
		}
		return k
	}
	return 0
}

// seqLen returns the length of the UTF-8 sequence led by c, or 0 if c cannot
// start one (continuation bytes, C0, C1, F5..FF).
func seqLen(c byte) int {
	switch {
	case c < 0x80:
		return 1
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 0
}

// secondRange returns the allowed range of the byte after lead c.
func secondRange(c byte) (lo, hi byte) {
	switch c {
	case 0xE0:
		return 0xA0, 0xBF
	case 0xED:
		return 0x80, 0x9F
	case 0xF0:
		return 0x90, 0xBF
	case 0xF4:
		return 0x80, 0x8F
	}
	return 0x80, 0xBF
}
