package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The examples of spec/tokenizer.md §1.1 (stored text -> bytes).
var escapeExamples = []struct {
	id     int
	stored string
	raw    []byte
}{
	{1, `\x00`, []byte{0x00}},
	{10, `\t`, []byte{0x09}},
	{93, `\\`, []byte{0x5c}},
	{128, `\x7f`, []byte{0x7f}},
	{256, `\xff`, []byte{0xff}},
	{261, `\n\n`, []byte{0x0a, 0x0a}},
	{263, `\r\n`, []byte{0x0d, 0x0a}},
	{2412, `\x82\xac`, []byte{0x82, 0xac}},
	{20000, ` G\xc3\xbc`, []byte(" Gü")},
	{379, `"\'`, []byte(`"'`)},
	{435, `\'"`, []byte(`'"`)},
	{40, `'`, []byte(`'`)},
	{35, `"`, []byte(`"`)},
	{0, `<s>`, []byte("<s>")},
	{65531, `[PAD65531]`, []byte("[PAD65531]")},
}

func TestUnescapeSpecExamples(t *testing.T) {
	for _, ex := range escapeExamples {
		got, err := Unescape(ex.stored)
		require.NoError(t, err, "id %d", ex.id)
		require.Equal(t, ex.raw, got, "Unescape(%q) for id %d", ex.stored, ex.id)
		require.Equal(t, ex.stored, Escape(ex.raw), "Escape(% x) for id %d", ex.raw, ex.id)
	}
}

func TestUnescapeOtherEscapes(t *testing.T) {
	for stored, want := range map[string][]byte{
		``:             {},
		`abc`:          []byte("abc"),
		`\XFF`:         []byte("XFF"), // only lowercase x introduces hex, any other char is itself
		`\xAb\xcD`:     {0xab, 0xcd},  // uppercase hex digits accepted
		`\"\?\ `:       []byte(`"? `),
		`a\\b`:         []byte(`a\b`),
		`\\x41`:        []byte(`\x41`),
		"caf\xc3\xa9":  []byte("café"), // raw non-ASCII is copied
		`\x00\x00\x00`: {0, 0, 0},
	} {
		got, err := Unescape(stored)
		require.NoError(t, err, "Unescape(%q)", stored)
		require.Equal(t, want, got, "Unescape(%q)", stored)
	}
}

func TestUnescapeMalformed(t *testing.T) {
	for stored, msg := range map[string]string{
		`\`:       "lone backslash at offset 0",
		`abc\`:    "lone backslash at offset 3",
		`\x`:      "truncated \\x escape at offset 0",
		`\x4`:     "truncated \\x escape at offset 0",
		`ab\x4`:   "truncated \\x escape at offset 2",
		`\x41\x`:  "truncated \\x escape at offset 4",
		`\xg0`:    "invalid hex digits \"g0\" in \\x escape at offset 0",
		`a\x0z`:   "invalid hex digits \"0z\" in \\x escape at offset 1",
		`\x-1`:    "invalid hex digits",
		"\\x\xc3": "truncated",
	} {
		_, err := Unescape(stored)
		require.Error(t, err, "Unescape(%q)", stored)
		require.Contains(t, err.Error(), msg, "Unescape(%q)", stored)
	}
}

func TestEscapeEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := []byte{byte(c)}
		s := Escape(b)
		for i := 0; i < len(s); i++ {
			require.True(t, s[i] >= 0x20 && s[i] < 0x7f, "Escape(%#02x) = %q is not printable ASCII", c, s)
		}
		got, err := Unescape(s)
		require.NoError(t, err)
		require.Equal(t, b, got, "byte %#02x via %q", c, s)
	}
	// Python repr rules for single bytes.
	require.Equal(t, `\x0b`, Escape([]byte{0x0b}))
	require.Equal(t, `\x1f`, Escape([]byte{0x1f}))
	require.Equal(t, `\x80`, Escape([]byte{0x80}))
	require.Equal(t, `~`, Escape([]byte{'~'}))
	require.Equal(t, ` `, Escape([]byte{' '}))
}

func TestEscapeQuoteRule(t *testing.T) {
	// Python's repr of bytes: delimit with ' unless the bytes contain ' and
	// no "; the delimiter is escaped inside, so \' appears only when both
	// quote kinds occur.
	require.Equal(t, `it's`, Escape([]byte(`it's`)))
	require.Equal(t, `say "hi"`, Escape([]byte(`say "hi"`)))
	require.Equal(t, `\'"\'`, Escape([]byte(`'"'`)))
	require.Equal(t, `"\'\\`, Escape([]byte(`"'\`)))
	require.Equal(t, "", Escape(nil))
}
