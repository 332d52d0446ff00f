package tokenizer

import (
	"bytes"
	"fmt"
	"strings"
)

// Unescape converts a token string as stored in a GGUF file's
// tokenizer.ggml.tokens array (the text between the quotes of Python's
// bytes repr) back to the raw token bytes, as llama.cpp's
// llama_unescape_rwkv_token does: a backslash followed by t, n or r gives
// 0x09, 0x0A or 0x0D; a backslash followed by x and two hex digits gives that
// byte; a backslash followed by any other character gives that character's
// byte (this covers \\ and \'); every other byte is copied.
//
// Unlike llama.cpp, which silently drops or garbles them, malformed escapes
// are errors: a trailing lone backslash, a \x escape with fewer than two
// characters left, and a \x escape whose digits are not hexadecimal.
// Uppercase hex digits are accepted.
func Unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("tokenizer: unescape %q: lone backslash at offset %d", s, i)
		}
		i++
		switch e := s[i]; e {
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("tokenizer: unescape %q: truncated \\x escape at offset %d (needs two hex digits)", s, i-1)
			}
			hi, ok1 := hexDigit(s[i+1])
			lo, ok2 := hexDigit(s[i+2])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("tokenizer: unescape %q: invalid hex digits %q in \\x escape at offset %d", s, s[i+1:i+3], i-1)
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Escape returns the form in which llama.cpp's converter stores token bytes b
// in tokenizer.ggml.tokens: the characters between the quotes of Python's
// repr(bytes(b)). Backslash becomes \\; tab, newline and carriage return
// become \t, \n and \r; other bytes below 0x20, 0x7F and bytes from 0x80 up
// become \x with two lowercase hex digits; the single quote becomes \' only
// when b contains both quote kinds (Python then delimits with single quotes);
// every other printable ASCII byte is itself. The result is plain ASCII and
// Unescape(Escape(b)) equals b for every b.
func Escape(b []byte) string {
	const hexdigits = "0123456789abcdef"
	escQuote := bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') >= 0
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for _, c := range b {
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c == '\'' && escQuote:
			sb.WriteString(`\'`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			sb.WriteString(`\x`)
			sb.WriteByte(hexdigits[c>>4])
			sb.WriteByte(hexdigits[c&15])
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
