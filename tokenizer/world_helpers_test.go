package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/testenv"
)

// This file holds test-only helpers: a parser for BlinkDL's vocabulary file
// (rwkv_vocab_v20230424.txt), the World id space built from it the way
// llama.cpp's converter builds it, and the tokenizer fixture cases.

const (
	worldFileTokens = 65529 // ids 1..65529 in the vocabulary file
	worldVocabSize  = 65536 // with <s> and [PAD65530]..[PAD65535]
)

// parsePyLiteral evaluates a Python string literal ('...' or "...", whose
// text is encoded as UTF-8) or bytes literal (b'...' or b"...") as written
// by repr, returning its bytes.
func parsePyLiteral(lit string) ([]byte, error) {
	isBytes := false
	s := lit
	if strings.HasPrefix(s, "b") {
		isBytes = true
		s = s[1:]
	}
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return nil, fmt.Errorf("not a quoted literal: %s", lit)
	}
	q := s[0]
	s = s[1 : len(s)-1]
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == q {
			return nil, fmt.Errorf("unescaped quote at %d in %s", i, lit)
		}
		if isBytes && c >= 0x80 {
			return nil, fmt.Errorf("non-ASCII character in bytes literal %s", lit)
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("trailing backslash in %s", lit)
		}
		i++
		e := s[i]
		switch e {
		case '\\', '\'', '"':
			out = append(out, e)
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, 11)
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if e != 'x' && isBytes { // not an escape in a bytes literal
				out = append(out, '\\', e)
				continue
			}
			if i+width >= len(s) {
				return nil, fmt.Errorf("truncated \\%c escape in %s", e, lit)
			}
			v, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
			if err != nil {
				return nil, fmt.Errorf("bad \\%c escape in %s: %v", e, lit, err)
			}
			i += width
			if isBytes {
				out = append(out, byte(v))
			} else {
				if v > utf8.MaxRune {
					return nil, fmt.Errorf("code point %#x out of range in %s", v, lit)
				}
				// Python's str -> UTF-8 ("surrogatepass" is not used by the
				// vocabulary; surrogates would make encoding fail there too).
				if v >= 0xD800 && v <= 0xDFFF {
					return nil, fmt.Errorf("surrogate %#x in %s", v, lit)
				}
				out = utf8.AppendRune(out, rune(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(s[i:j], 8, 32)
			i = j - 1
			if isBytes {
				out = append(out, byte(v))
			} else {
				out = utf8.AppendRune(out, rune(v))
			}
		default: // unknown escapes keep the backslash
			out = append(out, '\\', e)
		}
	}
	return out, nil
}

// parseVocabLine parses "<id> <literal> <byte length>".
func parseVocabLine(line string) (id int, piece []byte, n int, err error) {
	a := strings.IndexByte(line, ' ')
	b := strings.LastIndexByte(line, ' ')
	if a < 0 || b <= a {
		return 0, nil, 0, fmt.Errorf("malformed line %q", line)
	}
	if id, err = strconv.Atoi(line[:a]); err != nil {
		return 0, nil, 0, err
	}
	if n, err = strconv.Atoi(line[b+1:]); err != nil {
		return 0, nil, 0, err
	}
	piece, err = parsePyLiteral(line[a+1 : b])
	return id, piece, n, err
}

// worldVocab is the World vocabulary as llama.cpp's converter lays it out:
// id 0 "<s>" (control), ids 1..65529 from the file (normal), ids
// 65530..65535 "[PADn]" (unused).
type worldVocab struct {
	pieces [][]byte
	types  []TokenType
}

var (
	worldOnce sync.Once
	worldVal  *worldVocab
	worldErr  error
)

// loadWorldFile parses the vocabulary file at path (once per process).
func loadWorldFile(path string) (*worldVocab, error) {
	worldOnce.Do(func() { worldVal, worldErr = readWorldFile(path) })
	return worldVal, worldErr
}

func readWorldFile(path string) (*worldVocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v := &worldVocab{
		pieces: make([][]byte, worldVocabSize),
		types:  make([]TokenType, worldVocabSize),
	}
	v.pieces[0], v.types[0] = []byte("<s>"), TypeControl
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	next := 1
	for sc.Scan() {
		id, p, n, err := parseVocabLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, next, err)
		}
		if id != next {
			return nil, fmt.Errorf("%s line %d: id %d out of sequence", path, next, id)
		}
		if len(p) != n {
			return nil, fmt.Errorf("%s line %d: literal has %d bytes, third column says %d", path, next, len(p), n)
		}
		v.pieces[id], v.types[id] = p, TypeNormal
		next++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if next-1 != worldFileTokens {
		return nil, fmt.Errorf("%s: %d tokens, want %d", path, next-1, worldFileTokens)
	}
	for id := worldFileTokens + 1; id < worldVocabSize; id++ {
		v.pieces[id], v.types[id] = fmt.Appendf(nil, "[PAD%d]", id), TypeUnused
	}
	return v, nil
}

// loadWorld returns the World vocabulary, skipping when the fixtures are
// absent.
func loadWorld(tb testing.TB) *worldVocab {
	tb.Helper()
	v, err := loadWorldFile(fixtures.Path(tb, "vocab", "rwkv_vocab_v20230424.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

var (
	worldTokOnce sync.Once
	worldTok     *Tokenizer
)

// worldTokenizer returns a tokenizer over the World vocabulary with
// llama.cpp's types (id 0 control).
func worldTokenizer(tb testing.TB) *Tokenizer {
	tb.Helper()
	v := loadWorld(tb)
	worldTokOnce.Do(func() {
		var err error
		if worldTok, err = New(v.pieces, v.types); err != nil {
			tb.Fatal(err)
		}
	})
	if worldTok == nil {
		tb.Fatal("world tokenizer failed to build earlier")
	}
	return worldTok
}

// tokCase is one line of tokenizer-cases.jsonl.
type tokCase struct {
	Name           string  `json:"name"`
	Text           *string `json:"text"`
	TextHex        string  `json:"text_hex"`
	IDs            []int   `json:"ids"`
	NTokens        int     `json:"n_tokens"`
	Decoded        *string `json:"decoded"`
	DecodedHex     string  `json:"decoded_hex"`
	RoundtripExact bool    `json:"roundtrip_exact"`

	input, decoded []byte
}

func readCases(path string) ([]tokCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []tokCase
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c tokCase
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, i+1, err)
		}
		if c.input, err = hex.DecodeString(c.TextHex); err != nil {
			return nil, fmt.Errorf("%s line %d: text_hex: %v", path, i+1, err)
		}
		if c.decoded, err = hex.DecodeString(c.DecodedHex); err != nil {
			return nil, fmt.Errorf("%s line %d: decoded_hex: %v", path, i+1, err)
		}
		if c.Text != nil && *c.Text != string(c.input) {
			return nil, fmt.Errorf("%s line %d (%s): text and text_hex disagree", path, i+1, c.Name)
		}
		if c.NTokens != len(c.IDs) {
			return nil, fmt.Errorf("%s line %d (%s): n_tokens %d but %d ids", path, i+1, c.Name, c.NTokens, len(c.IDs))
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// loadCases returns the fixture cases, skipping when the fixtures are absent.
func loadCases(tb testing.TB) []tokCase {
	tb.Helper()
	cases, err := readCases(fixtures.Path(tb, "vocab", "tokenizer-cases.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(cases) == 0 {
		tb.Fatal("no tokenizer cases")
	}
	return cases
}

// optionalFixture returns the path of a shared fixture, or "" when it cannot
// be found, without skipping or failing tb (the fuzz target then falls back
// to a synthetic vocabulary). Under CI a missing fixture fails tb, as
// everywhere else.
func optionalFixture(tb testing.TB, elem ...string) string {
	if testenv.CI() {
		return fixtures.Path(tb, elem...)
	}
	q := &quietTB{TB: tb}
	p := fixtures.Path(q, elem...)
	if q.missing {
		return ""
	}
	return p
}

// quietTB records instead of skipping or failing.
type quietTB struct {
	testing.TB
	missing bool
}

func (q *quietTB) Helper()               {}
func (q *quietTB) Skipf(string, ...any)  { q.missing = true }
func (q *quietTB) Fatalf(string, ...any) { q.missing = true }
func (q *quietTB) Skip(...any)           { q.missing = true }
func (q *quietTB) Fatal(...any)          { q.missing = true }
func (q *quietTB) Errorf(string, ...any) { q.missing = true }
func (q *quietTB) Logf(string, ...any)   {}
func (q *quietTB) Log(...any)            {}
func (q *quietTB) SkipNow()              { q.missing = true }
func (q *quietTB) FailNow()              { q.missing = true }
func (q *quietTB) Fail()                 { q.missing = true }
func (q *quietTB) Error(...any)          { q.missing = true }

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff(a, b []int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// idAt returns ids[i] as text, or "none" past the end.
func idAt(ids []int, i int) string {
	if i < len(ids) {
		return strconv.Itoa(ids[i])
	}
	return "none"
}
