package tokenizer

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeVocab returns pieces and llama.cpp types for FuzzDecodeIDs: the
// World vocabulary (id 0 control, 65530.. unused) when the fixtures are
// present, else the synthetic pieces with id 0 control and id 5 unknown.
func decodeVocab(f *testing.F) ([][]byte, []TokenType) {
	if path := optionalFixture(f, "vocab", "rwkv_vocab_v20230424.txt"); path != "" {
		v, err := loadWorldFile(path)
		if err != nil {
			f.Fatal(err)
		}
		return v.pieces, v.types
	}
	pieces := syntheticPieces()
	types := make([]TokenType, len(pieces))
	for i := range types {
		types[i] = TypeNormal
	}
	types[0], types[5] = TypeControl, TypeUnknown
	return pieces, types
}

// fuzzIDs turns bytes into ids, 3 bytes each: mostly in range, with a
// marker byte for negative ids and ids just past the vocabulary.
func fuzzIDs(b []byte, vocab int) []int {
	var ids []int
	for ; len(b) >= 3; b = b[3:] {
		n := int(b[0]) | int(b[1])<<8
		switch b[2] {
		case 0xff:
			ids = append(ids, -1-n)
		case 0xfe:
			ids = append(ids, vocab+n)
		default:
			ids = append(ids, n%vocab)
		}
	}
	return ids
}

// FuzzDecodeIDs: Decode and the StreamDecoder of arbitrary id sequences
// never panic; an id outside [0, V) is an error naming it and its position;
// otherwise Decode gives the pieces of the ids in order, control and
// unknown tokens decoding to nothing (llama.cpp's token_to_piece with
// special=false), and the stream gives the same bytes, every chunk valid
// UTF-8 when the whole is.
func FuzzDecodeIDs(f *testing.F) {
	pieces, types := decodeVocab(f)
	tok, err := New(pieces, types)
	if err != nil {
		f.Fatal(err)
	}
	vocab := len(pieces)
	for _, seed := range [][]int{{}, {0}, {1, 2, 3}, {-1}, {vocab}, {vocab - 1, 0, 5}} {
		var b []byte
		for _, id := range seed {
			switch {
			case id < 0:
				b = append(b, byte(-1-id), byte((-1-id)>>8), 0xff)
			case id >= vocab:
				b = append(b, byte(id-vocab), byte((id-vocab)>>8), 0xfe)
			default:
				b = append(b, byte(id), byte(id>>8), 0)
			}
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids := fuzzIDs(b, vocab)
		got, err := tok.Decode(ids)
		bad := -1
		var want []byte
		for i, id := range ids {
			if id < 0 || id >= vocab {
				bad = i
				break
			}
			if types[id] != TypeControl && types[id] != TypeUnknown {
				want = append(want, pieces[id]...)
			}
		}
		if bad >= 0 {
			wantMsg := fmt.Sprintf("id %d at position %d out of range [0, %d)", ids[bad], bad, vocab)
			if err == nil || !strings.Contains(err.Error(), wantMsg) || len(got) != 0 {
				t.Fatalf("ids %v: got %q, %v; want an error containing %q", ids, got, err, wantMsg)
			}
		} else if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ids %v: got %q, %v; want %q", ids, got, err, want)
		}

		d := tok.NewStreamDecoder()
		valid := utf8.Valid(want)
		var out []byte
		for i, id := range ids {
			chunk, err := d.Add(id)
			if i == bad {
				if err == nil {
					t.Fatalf("stream: id %d at %d accepted", id, i)
				}
				return
			}
			if err != nil {
				t.Fatalf("stream: id %d at %d: %v", id, i, err)
			}
			if valid && !utf8.Valid(chunk) {
				t.Fatalf("stream of %v: Add(%d) gave invalid UTF-8 %x", ids, id, chunk)
			}
			out = append(out, chunk...)
		}
		out = append(out, d.Flush()...)
		if !bytes.Equal(out, want) {
			t.Fatalf("stream of %v gave %q, want %q", ids, out, want)
		}
	})
}
