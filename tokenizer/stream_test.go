package tokenizer

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestIncompleteTail(t *testing.T) {
	for s, want := range map[string]int{
		"":                 0,
		"a":                0,
		"\xc3":             1,
		"a\xc3":            1,
		"\xc3\xa9":         0,
		"\xe2":             1,
		"\xe2\x82":         2,
		"\xe2\x82\xac":     0,
		"\xf0":             1,
		"\xf0\x9f":         2,
		"\xf0\x9f\x98":     3,
		"\xf0\x9f\x98\x80": 0,
		"\x80":             0, // a lone continuation byte can never complete
		"\x9f\x98":         0,
		"\xc0":             0, // invalid lead bytes
		"\xc1":             0,
		"\xf5":             0,
		"\xff":             0,
		"\xe0\x80":         0, // overlong
		"\xe0\xa0":         2,
		"\xed\xa0":         0, // surrogate
		"\xed\x9f":         2,
		"\xf0\x80":         0, // overlong
		"\xf4\x90":         0, // above U+10FFFF
		"\xf4\x8f\xbf":     3,
		"\xe2\x82a":        0,
		"\xe2\xc3":         1,
		"\xf0\x9f\x98\xc3": 1,
	} {
		require.Equal(t, want, incompleteTail([]byte(s)), "%q", s)
	}
}

// streamAll feeds ids one at a time and checks the invariants of each Add.
func streamAll(t *testing.T, tok *Tokenizer, ids []int, wholeValid bool, name string) []byte {
	t.Helper()
	d := tok.NewStreamDecoder()
	var out []byte
	for i, id := range ids {
		b, err := d.Add(id)
		require.NoError(t, err)
		require.LessOrEqual(t, d.Pending(), 3)
		if wholeValid {
			require.True(t, utf8.Valid(b), "%s: Add #%d (id %d) gave invalid UTF-8 %x", name, i, id, b)
			require.Zero(t, incompleteTail(b), "%s: Add #%d (id %d) ends in an incomplete sequence: %x", name, i, id, b)
		}
		out = append(out, b...)
	}
	return append(out, d.Flush()...)
}

func TestStreamDecoderWorldCases(t *testing.T) {
	tok := worldTokenizer(t)
	for _, c := range loadCases(t) {
		want, err := tok.Decode(c.IDs)
		require.NoError(t, err)
		got := streamAll(t, tok, c.IDs, utf8.Valid(want), c.Name)
		require.Equal(t, want, got, c.Name)
	}
}

func TestStreamDecoderEmoji(t *testing.T) {
	tok := worldTokenizer(t)
	d := tok.NewStreamDecoder()
	b, err := d.Add(3319) // F0 9F
	require.NoError(t, err)
	require.Empty(t, b)
	require.Equal(t, 2, d.Pending())
	b, err = d.Add(153) // 98
	require.NoError(t, err)
	require.Empty(t, b)
	require.Equal(t, 3, d.Pending())
	b, err = d.Add(0) // control: nothing, still held
	require.NoError(t, err)
	require.Empty(t, b)
	b, err = d.Add(129) // 80
	require.NoError(t, err)
	require.Equal(t, []byte("😀"), b)
	require.Zero(t, d.Pending())
	require.Nil(t, d.Flush())

	// "€" split as E2 + 82 AC (id 2412).
	b, err = d.Add(227) // E2
	require.NoError(t, err)
	require.Empty(t, b)
	b, err = d.Add(2412)
	require.NoError(t, err)
	require.Equal(t, []byte("€"), b)
}

func TestStreamDecoderInvalid(t *testing.T) {
	tok := syntheticTokenizer(t)
	byteID := func(c byte) int { return int(c) + 1 }
	d := tok.NewStreamDecoder()
	// A lone continuation byte is released at once.
	b, err := d.Add(byteID(0x80))
	require.NoError(t, err)
	require.Equal(t, []byte{0x80}, b)
	// A lead byte followed by a non-continuation: the lead is released raw.
	b, _ = d.Add(byteID(0xe2))
	require.Empty(t, b)
	b, _ = d.Add(byteID('a'))
	require.Equal(t, []byte("\xe2a"), b)
	// A lead byte is held until the end of the stream, then flushed.
	b, _ = d.Add(byteID(0xf0))
	require.Empty(t, b)
	b, _ = d.Add(byteID(0x9f))
	require.Empty(t, b)
	require.Equal(t, []byte{0xf0, 0x9f}, d.Flush())
	require.Nil(t, d.Flush())
	// Invalid lead bytes are never held.
	for _, c := range []byte{0xc0, 0xc1, 0xf5, 0xff} {
		b, _ = d.Add(byteID(c))
		require.Equal(t, []byte{c}, b)
	}
	// A bad id is an error and leaves the state alone.
	b, _ = d.Add(byteID(0xc3))
	require.Empty(t, b)
	_, err = d.Add(tok.VocabSize())
	require.ErrorContains(t, err, "out of range")
	b, _ = d.Add(byteID(0xa9))
	require.Equal(t, []byte("é"), b)
}

func TestStreamDecoderRandom(t *testing.T) {
	tok := syntheticTokenizer(t)
	rng := newRand(3)
	for range 3000 {
		ids := make([]int, rng.IntN(12))
		for i := range ids {
			ids[i] = rng.IntN(tok.VocabSize())
		}
		want, err := tok.Decode(ids)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, streamAll(t, tok, ids, utf8.Valid(want), "random")), "%v", ids)
	}
}
