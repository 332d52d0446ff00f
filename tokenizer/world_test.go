package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
)

func TestParsePyLiteral(t *testing.T) {
	for lit, want := range map[string]string{
		`'\x00'`:            "\x00",
		`'\t'`:              "\t",
		`'\\'`:              `\`,
		`'\\$'`:             `\$`,
		`b'\xff'`:           "\xff",
		`b'\x82\xac'`:       "\x82\xac",
		`'\x80'`:            "\u0080", // a str \x escape is a code point
		`'\u200b'`:          "\u200b",
		`' Gü'`:             " Gü",
		`"'"`:               "'",
		`'"\''`:             `"'`,
		`'\'"'`:             `'"`,
		`b'\u200b'`:         `\u200b`, // no \u escapes in bytes literals
		`'\d'`:              `\d`,     // unknown escapes keep the backslash
		`'\101\0'`:          "A\x00",
		`'\U0001f600'`:      "😀",
		`'a\nb\rc'`:         "a\nb\rc",
		`"it's"`:            "it's",
		`b"it's \x00\\ ok"`: "it's \x00\\ ok",
	} {
		got, err := parsePyLiteral(lit)
		require.NoError(t, err, lit)
		require.Equal(t, []byte(want), got, lit)
	}
	for _, bad := range []string{`x`, `'abc`, `'a'b'`, `'\x4'`, `'\'`, `b'é'`} {
		_, err := parsePyLiteral(bad)
		require.Error(t, err, bad)
	}
}

func TestWorldVocabLayout(t *testing.T) {
	v := loadWorld(t) // checks every literal's byte length against the third column
	require.Len(t, v.pieces, worldVocabSize)
	for id := 1; id <= 256; id++ {
		require.Equal(t, []byte{byte(id - 1)}, v.pieces[id], "id %d", id)
	}
	require.Equal(t, bytes.Repeat([]byte(" "), 128), v.pieces[65529])
	for _, ex := range escapeExamples {
		require.Equal(t, ex.raw, v.pieces[ex.id], "id %d", ex.id)
		require.Equal(t, ex.stored, Escape(v.pieces[ex.id]), "id %d", ex.id)
	}
	// Unescaping is injective on the converter's output: all pieces distinct.
	seen := make(map[string]int, len(v.pieces))
	nonUTF8, bothQuotes := 0, 0
	for id, p := range v.pieces {
		prev, dup := seen[string(p)]
		require.False(t, dup, "ids %d and %d have the same bytes", prev, id)
		seen[string(p)] = id
		if !utf8.Valid(p) {
			nonUTF8++
		}
		if bytes.IndexByte(p, '\'') >= 0 && bytes.IndexByte(p, '"') >= 0 {
			bothQuotes++
		}
	}
	require.Equal(t, 486, nonUTF8, "tokens that are not valid UTF-8 on their own (spec §3)")
	// spec §1.1 says 13; Python's repr of the file's tokens gives 11 (ids 379,
	// 435, 3349, 3393, 5187, 5204, 5355, 5397, 5410, 19258, 19277), and
	// TestEscapeMatchesGGUF confirms the escaping entry for entry.
	require.Equal(t, 11, bothQuotes, "tokens holding both quote kinds")
}

// TestEscapeUnescapeWorld: Unescape(Escape(piece)) == piece for all 65536
// pieces, and Escape(Unescape(s)) == s for the escaped strings.
func TestEscapeUnescapeWorld(t *testing.T) {
	v := loadWorld(t)
	escaped := make([]string, len(v.pieces))
	for id, p := range v.pieces {
		s := Escape(p)
		got, err := Unescape(s)
		require.NoError(t, err, "id %d", id)
		require.Equal(t, p, got, "id %d via %q", id, s)
		require.Equal(t, s, Escape(got), "id %d", id)
		escaped[id] = s
	}
	types := make([]int32, len(v.types))
	for i, tt := range v.types {
		types[i] = int32(tt)
	}
	tok, err := FromEscaped(escaped, types)
	require.NoError(t, err)
	require.Equal(t, worldVocabSize, tok.VocabSize())
	for id := range v.pieces {
		p, err := tok.Piece(id)
		require.NoError(t, err)
		require.Equal(t, v.pieces[id], p, "id %d", id)
	}
	require.Equal(t, TypeControl, tok.TokenType(0))
	require.Equal(t, TypeNormal, tok.TokenType(261))
	require.Equal(t, TypeUnused, tok.TokenType(65535))
}

// TestEscapeMatchesGGUF compares Escape with the token strings of the
// fixture GGUF (written by the same escaping as llama.cpp's converter) entry
// for entry, using a minimal test-only reader of the GGUF key/value section.
func TestEscapeMatchesGGUF(t *testing.T) {
	v := loadWorld(t)
	path := fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf") // skips, or fails under CI
	tokens, types, err := readGGUFVocab(path)
	require.NoError(t, err)
	require.Len(t, tokens, worldVocabSize)
	require.Len(t, types, worldVocabSize)
	for id, p := range v.pieces {
		require.Equal(t, tokens[id], Escape(p), "id %d", id)
		require.Equal(t, int32(v.types[id]), types[id], "type of id %d", id)
	}
	tok, err := FromEscaped(tokens, types)
	require.NoError(t, err)
	for _, c := range loadCases(t) {
		ids, err := tok.Encode(c.input)
		require.NoError(t, err, c.Name)
		require.Equal(t, c.IDs, ids, c.Name)
	}
}

// readGGUFVocab returns tokenizer.ggml.tokens and tokenizer.ggml.token_type
// of a GGUF v2/v3 file.
func readGGUFVocab(path string) (tokens []string, types []int32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	le := binary.LittleEndian
	u32 := func() uint32 { var x uint32; _ = binary.Read(r, le, &x); return x }
	u64 := func() uint64 { var x uint64; _ = binary.Read(r, le, &x); return x }
	str := func() (string, error) {
		n := u64()
		if n > 1<<20 {
			return "", fmt.Errorf("string length %d", n)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return string(b), err
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != "GGUF" {
		return nil, nil, fmt.Errorf("not a GGUF file")
	}
	if ver := u32(); ver < 2 {
		return nil, nil, fmt.Errorf("GGUF version %d", ver)
	}
	_ = u64() // tensor count
	nkv := u64()
	sizes := map[uint32]int{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
	var skip func(typ uint32) error
	skip = func(typ uint32) error {
		switch typ {
		case 8:
			_, err := str()
			return err
		case 9:
			et, n := u32(), u64()
			for range n {
				if err := skip(et); err != nil {
					return err
				}
			}
			return nil
		}
		sz, ok := sizes[typ]
		if !ok {
			return fmt.Errorf("unknown GGUF type %d", typ)
		}
		_, err := r.Discard(sz)
		return err
	}
	for range nkv {
		key, err := str()
		if err != nil {
			return nil, nil, err
		}
		typ := u32()
		switch {
		case key == "tokenizer.ggml.tokens" && typ == 9:
			et, n := u32(), u64()
			if et != 8 {
				return nil, nil, fmt.Errorf("tokens of type %d", et)
			}
			tokens = make([]string, n)
			for i := range tokens {
				if tokens[i], err = str(); err != nil {
					return nil, nil, err
				}
			}
		case key == "tokenizer.ggml.token_type" && typ == 9:
			et, n := u32(), u64()
			if et != 5 {
				return nil, nil, fmt.Errorf("token types of type %d", et)
			}
			types = make([]int32, n)
			if err := binary.Read(r, le, types); err != nil {
				return nil, nil, err
			}
		default:
			if err := skip(typ); err != nil {
				return nil, nil, fmt.Errorf("key %s: %v", key, err)
			}
		}
	}
	return tokens, types, nil
}

// TestWorldCases runs every fixture case: Encode must give llama.cpp's ids
// and Decode llama.cpp's detokenized bytes.
func TestWorldCases(t *testing.T) {
	tok := worldTokenizer(t)
	for _, c := range loadCases(t) {
		ids, err := tok.Encode(c.input)
		require.NoError(t, err, c.Name)
		if i := firstDiff(ids, c.IDs); i >= 0 {
			t.Errorf("case %s: ids differ at position %d: got %s, want %s (got %d ids, want %d)",
				c.Name, i, idAt(ids, i), idAt(c.IDs, i), len(ids), len(c.IDs))
		}
		dec, err := tok.Decode(c.IDs)
		require.NoError(t, err, c.Name)
		if !bytes.Equal(dec, c.decoded) {
			t.Errorf("case %s: Decode = %x, want %x", c.Name, dec, c.decoded)
		}
		require.Equal(t, c.RoundtripExact, bytes.Equal(dec, c.input), "case %s: roundtrip_exact", c.Name)
	}
}

// TestWorldSpecVectors is the table of spec/tokenizer.md §2.2.
func TestWorldSpecVectors(t *testing.T) {
	tok := worldTokenizer(t)
	for _, v := range []struct {
		in  string
		ids []int
	}{
		{"User: hello, world! Grüße 中文\n\nAssistant: <think", []int{24281, 59, 38685, 45, 40213, 34, 29000, 9229, 33, 10285, 13012, 261, 5585, 41693, 59, 295, 35762}},
		{"User: hi\n\nAssistant:", []int{24281, 59, 4571, 261, 5585, 41693, 59}},
		{"Assistant: <think", []int{5585, 41693, 59, 295, 35762}},
		{"\n\n\n", []int{3328}},
		{" \n\n", []int{3336}},
		{"€", []int{9863}},
		{"😀", []int{3319, 153, 129}},
		{"a<s>b[PAD65531]c\xff\xfe", []int{98, 0, 99, 65531, 100, 256, 255}},
	} {
		ids, err := tok.Encode([]byte(v.in))
		require.NoError(t, err, "%q", v.in)
		require.Equal(t, v.ids, ids, "%q", v.in)
	}
	p, err := tok.Piece(29000)
	require.NoError(t, err)
	require.Equal(t, []byte(" Grü"), p)
	p, err = tok.Piece(9229)
	require.NoError(t, err)
	require.Equal(t, []byte("ße"), p)
	dec, err := tok.Decode([]int{98, 0, 99, 65531, 100, 256, 255})
	require.NoError(t, err)
	require.Equal(t, []byte("ab[PAD65531]c\xff\xfe"), dec, "id 0 (control) decodes to nothing, [PADn] to its text")
}

// TestWorldMatchesReference compares Encode with a naive greedy longest
// match on the fixture texts and on pseudo-random texts built from pieces.
func TestWorldMatchesReference(t *testing.T) {
	v := loadWorld(t)
	tok := worldTokenizer(t)
	ref := newRefTokenizer(v.pieces)
	var texts [][]byte
	for _, c := range loadCases(t) {
		texts = append(texts, c.input)
	}
	rng := newRand(1)
	for range 200 {
		var b []byte
		for range rng.IntN(40) {
			p := v.pieces[rng.IntN(len(v.pieces))]
			if rng.IntN(4) == 0 { // cut pieces to create partial matches
				p = p[:1+rng.IntN(len(p))]
			}
			b = append(b, p...)
		}
		texts = append(texts, b)
	}
	for _, b := range texts {
		got, err := tok.Encode(b)
		require.NoError(t, err)
		require.Equal(t, ref.encode(b), got, "%q", b)
	}
}
