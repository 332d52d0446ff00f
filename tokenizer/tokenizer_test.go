package tokenizer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// refTokenizer is a naive greedy longest match built on hash maps: from
// each position extend the candidate while it is a prefix of some piece,
// remembering the longest candidate that is a piece.
type refTokenizer struct {
	ids      map[string]int
	prefixes map[string]bool
}

func newRefTokenizer(pieces [][]byte) *refTokenizer {
	r := &refTokenizer{ids: make(map[string]int, len(pieces)), prefixes: make(map[string]bool)}
	for id, p := range pieces {
		r.ids[string(p)] = id // later ids overwrite, as in llama.cpp
		for n := 1; n <= len(p); n++ {
			r.prefixes[string(p[:n])] = true
		}
	}
	return r
}

// encode returns the ids, or nil when no piece matches at some position.
func (r *refTokenizer) encode(b []byte) []int {
	ids := []int{}
	for p := 0; p < len(b); {
		best, bestN := -1, 0
		for n := 1; p+n <= len(b) && r.prefixes[string(b[p:p+n])]; n++ {
			if id, ok := r.ids[string(b[p:p+n])]; ok {
				best, bestN = id, n
			}
		}
		if best < 0 {
			return nil
		}
		ids = append(ids, best)
		p += bestN
	}
	return ids
}

// syntheticPieces is a small vocabulary: all 256 single bytes (id = byte+1),
// "<s>" at id 0 and some multi-byte tokens, including long ones, ones sharing
// prefixes and a token holding a prefix that is not itself a token.
func syntheticPieces() [][]byte {
	pieces := [][]byte{[]byte("<s>")}
	for c := 0; c < 256; c++ {
		pieces = append(pieces, []byte{byte(c)})
	}
	for _, s := range []string{
		"th", "the", "the ", " the", "there", "then", "he", "ll", "hello", "hello world",
		"\n\n", "\n\n\n", "  ", "    ", "        ", "€", "\xe2\x82", "\x82\xac", "\xf0\x9f",
		"中文", "ab", "abc", "abcd", "abcdefgh", "[PAD]", "aaaa", "aa",
	} {
		pieces = append(pieces, []byte(s))
	}
	return pieces
}

func syntheticTokenizer(t testing.TB) *Tokenizer {
	tok, err := New(syntheticPieces(), nil)
	require.NoError(t, err)
	return tok
}

func TestNewErrors(t *testing.T) {
	_, err := New([][]byte{[]byte("a"), {}}, nil)
	require.ErrorContains(t, err, "token id 1 is empty")
	_, err = New([][]byte{[]byte("a")}, []TokenType{1, 1})
	require.ErrorContains(t, err, "1 pieces but 2 token types")
	_, err = FromEscaped([]string{"a", `b\x4`}, nil)
	require.ErrorContains(t, err, "token id 1")
	require.ErrorContains(t, err, "truncated \\x escape at offset 1")
	_, err = FromEscaped([]string{"a"}, []int32{1, 3})
	require.Error(t, err)
	_, err = FromEscaped([]string{"a", ""}, nil)
	require.ErrorContains(t, err, "token id 1 is empty")
}

func TestNewCopiesPieces(t *testing.T) {
	pieces := [][]byte{[]byte("a"), []byte("ab")}
	tok, err := New(pieces, nil)
	require.NoError(t, err)
	pieces[1][1] = 'x'
	ids, err := tok.Encode([]byte("ab"))
	require.NoError(t, err)
	require.Equal(t, []int{1}, ids)
	p, err := tok.Piece(1)
	require.NoError(t, err)
	p[0] = 'z' // Piece returns a copy
	p, _ = tok.Piece(1)
	require.Equal(t, []byte("ab"), p)
}

func TestEncodeSynthetic(t *testing.T) {
	tok := syntheticTokenizer(t)
	ref := newRefTokenizer(syntheticPieces())
	for _, s := range []string{
		"", "a", "the", "there", "thermal", "hello world", "hello worl", "abcdefg", "abcdefgh",
		"aaaaaaaaa", "\n\n\n\n\n", "€€", "\xe2\x82\xe2", "<s><s", "         ", "中文中",
	} {
		got, err := tok.Encode([]byte(s))
		require.NoError(t, err, "%q", s)
		require.Equal(t, ref.encode([]byte(s)), got, "%q", s)
		dec, err := tok.Decode(got)
		require.NoError(t, err)
		require.Equal(t, s, string(dec)) // "<s>" is typed normal here, so it round-trips too
	}
	ids, err := tok.Encode([]byte("there"))
	require.NoError(t, err)
	require.Len(t, ids, 1)
	p, _ := tok.Piece(ids[0])
	require.Equal(t, []byte("there"), p)
}

func TestEncodeRandomMatchesReference(t *testing.T) {
	pieces := syntheticPieces()
	tok := syntheticTokenizer(t)
	ref := newRefTokenizer(pieces)
	rng := newRand(7)
	for range 2000 {
		var b []byte
		for range rng.IntN(30) {
			switch rng.IntN(3) {
			case 0:
				b = append(b, byte(rng.IntN(256)))
			default:
				p := pieces[rng.IntN(len(pieces))]
				b = append(b, p[:1+rng.IntN(len(p))]...)
			}
		}
		got, err := tok.Encode(b)
		require.NoError(t, err)
		require.Equal(t, ref.encode(b), got, "%q", b)
		dec, err := tok.Decode(got)
		require.NoError(t, err)
		require.Equal(t, b, dec)
	}
}

func TestEncodeNoToken(t *testing.T) {
	// No token for 'z' at all, and "xy" is a token while "x" is not.
	tok, err := New([][]byte{[]byte("a"), []byte("b"), []byte("xy")}, nil)
	require.NoError(t, err)
	ids, err := tok.Encode([]byte("abxyab"))
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2, 0, 1}, ids)

	ids, err = tok.Encode([]byte("abz"))
	require.Nil(t, ids)
	var nte *NoTokenError
	require.True(t, errors.As(err, &nte), "%v", err)
	require.Equal(t, NoTokenError{Offset: 2, Byte: 'z'}, *nte)
	require.EqualError(t, err, "tokenizer: no token matches the text at byte offset 2 (byte 0x7a)")

	for _, s := range []string{"abxa", "abx"} { // a walk that starts but finds no token
		_, err = tok.Encode([]byte(s))
		require.True(t, errors.As(err, &nte), "%q: %v", s, err)
		require.Equal(t, NoTokenError{Offset: 2, Byte: 'x'}, *nte, "%q", s)
	}

	dst := []int{42}
	dst, err = tok.AppendEncode(dst, []byte("az"))
	require.Error(t, err)
	require.Equal(t, []int{42}, dst)
	dst, err = tok.AppendEncode(dst, []byte("ab"))
	require.NoError(t, err)
	require.Equal(t, []int{42, 0, 1}, dst)
}

func TestEmptyVocabulary(t *testing.T) {
	tok, err := New(nil, nil)
	require.NoError(t, err)
	require.Equal(t, 0, tok.VocabSize())
	ids, err := tok.Encode(nil)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = tok.Encode([]byte("a"))
	require.Error(t, err)
}

func TestDuplicatePiecesLastWins(t *testing.T) {
	tok, err := New([][]byte{[]byte("a"), []byte("ab"), []byte("ab"), []byte("b")}, nil)
	require.NoError(t, err)
	ids, err := tok.Encode([]byte("abab"))
	require.NoError(t, err)
	require.Equal(t, []int{2, 2}, ids)
	dec, err := tok.Decode([]int{1, 2})
	require.NoError(t, err)
	require.Equal(t, []byte("abab"), dec)
}

func TestDecodeTypes(t *testing.T) {
	pieces := [][]byte{[]byte("<s>"), []byte("<unk>"), []byte("a"), []byte("[PAD3]"), []byte("<u>"), []byte{0xff}}
	types := []TokenType{TypeControl, TypeUnknown, TypeNormal, TypeUnused, TypeUserDefined, TypeByte}
	tok, err := New(pieces, types)
	require.NoError(t, err)
	dec, err := tok.Decode([]int{0, 2, 1, 3, 4, 5, 0})
	require.NoError(t, err)
	require.Equal(t, []byte("a[PAD3]<u>\xff"), dec)
	// Every type takes part in encoding, as in llama.cpp.
	ids, err := tok.Encode([]byte("<s>a<unk>[PAD3]"))
	require.NoError(t, err)
	require.Equal(t, []int{0, 2, 1, 3}, ids)

	_, err = tok.Decode([]int{2, 6})
	require.EqualError(t, err, "tokenizer: decode: id 6 at position 1 out of range [0, 6)")
	_, err = tok.Decode([]int{-1})
	require.ErrorContains(t, err, "id -1 at position 0")
	out, err := tok.AppendDecode([]byte("x"), []int{2, 99})
	require.Error(t, err)
	require.Equal(t, []byte("x"), out)

	for id, tt := range types {
		require.Equal(t, tt, tok.TokenType(id))
		p, err := tok.Piece(id)
		require.NoError(t, err)
		require.Equal(t, pieces[id], p) // Piece ignores the type
	}
	require.Equal(t, TypeUndefined, tok.TokenType(6))
	require.Equal(t, TypeUndefined, tok.TokenType(-1))
	_, err = tok.Piece(6)
	require.ErrorContains(t, err, "id 6 out of range")
	require.Equal(t, "control", TypeControl.String())
	require.Equal(t, "TokenType(9)", TokenType(9).String())
}

func TestConcurrentUse(t *testing.T) {
	tok := syntheticTokenizer(t)
	want, err := tok.Encode([]byte("hello world, the there then \n\n\n"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := tok.Encode([]byte("hello world, the there then \n\n\n"))
				if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					errs <- fmt.Errorf("goroutine %d: %v %v", g, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
