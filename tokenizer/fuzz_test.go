package tokenizer

import (
	"bytes"
	"slices"
	"testing"
	"unicode/utf8"
)

// fuzzVocab returns the pieces for the fuzz target: the World vocabulary
// when the fixtures are present (with every type normal, so that "<s>" in
// the text round-trips), else the synthetic one. It does not skip.
func fuzzVocab(f *testing.F) (pieces [][]byte, world bool) {
	if path := optionalFixture(f, "vocab", "rwkv_vocab_v20230424.txt"); path != "" {
		v, err := loadWorldFile(path)
		if err != nil {
			f.Fatal(err)
		}
		return v.pieces, true
	}
	f.Log("World vocabulary not found; fuzzing with the synthetic vocabulary")
	return syntheticPieces(), false
}

// FuzzRoundTrip checks that for any byte string Encode does not fail or
// panic, agrees with a naive greedy longest match, and that Decode and the
// StreamDecoder give the bytes back.
func FuzzRoundTrip(f *testing.F) {
	pieces, world := fuzzVocab(f)
	tok, err := New(pieces, nil) // all normal: id 0 "<s>" decodes to its text
	if err != nil {
		f.Fatal(err)
	}
	ref := newRefTokenizer(pieces)
	if world {
		if path := optionalFixture(f, "vocab", "tokenizer-cases.jsonl"); path != "" {
			cases, err := readCases(path)
			if err != nil {
				f.Fatal(err)
			}
			for _, c := range cases {
				f.Add(c.input)
			}
		}
	}
	for _, s := range []string{"", "a", "hello world", "<s>", "[PAD65535]x", "\xf0\x9f\x98\x80", "\xe2\x82", "\xff\xfe\x80",
		"User: hi\n\nAssistant: <think", "    \t\t\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := tok.Encode(b)
		if err != nil {
			t.Fatalf("Encode(%q): %v", b, err)
		}
		if want := ref.encode(b); !slices.Equal(ids, want) {
			t.Fatalf("Encode(%q) = %v, naive greedy gives %v", b, ids, want)
		}
		dec, err := tok.Decode(ids)
		if err != nil {
			t.Fatalf("Decode(%v): %v", ids, err)
		}
		if !bytes.Equal(dec, b) {
			t.Fatalf("Decode(Encode(%q)) = %q", b, dec)
		}
		d := tok.NewStreamDecoder()
		valid := utf8.Valid(b)
		var out []byte
		for _, id := range ids {
			s, err := d.Add(id)
			if err != nil {
				t.Fatal(err)
			}
			if valid && !utf8.Valid(s) {
				t.Fatalf("stream of %q: Add(%d) gave invalid UTF-8 %x", b, id, s)
			}
			out = append(out, s...)
		}
		out = append(out, d.Flush()...)
		if !bytes.Equal(out, b) {
			t.Fatalf("stream decode of %q gave %q", b, out)
		}
	})
}
