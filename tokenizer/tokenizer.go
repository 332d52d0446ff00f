package tokenizer

import (
	"bytes"
	"fmt"
	"slices"
)

// TokenType mirrors llama.cpp's token types, as stored in a GGUF file's
// tokenizer.ggml.token_type array.
type TokenType int32

// The token types of llama.cpp (llama_token_type). A World vocabulary uses
// TypeControl for id 0 ("<s>"), TypeNormal for the World tokens and
// TypeUnused for the [PADn] filler.
const (
	TypeUndefined   TokenType = 0 // no type; also what TokenType reports for an id out of range
	TypeNormal      TokenType = 1 // an ordinary token
	TypeUnknown     TokenType = 2 // the unknown token; decodes to nothing
	TypeControl     TokenType = 3 // a control token such as <s>; decodes to nothing
	TypeUserDefined TokenType = 4 // a user-defined token; decodes to its text
	TypeUnused      TokenType = 5 // padding; decodes to its literal text
	TypeByte        TokenType = 6 // a byte token; decodes to its bytes
)

// String returns the llama.cpp-style name of the type.
func (tt TokenType) String() string {
	switch tt {
	case TypeUndefined:
		return "undefined"
	case TypeNormal:
		return "normal"
	case TypeUnknown:
		return "unknown"
	case TypeControl:
		return "control"
	case TypeUserDefined:
		return "user-defined"
	case TypeUnused:
		return "unused"
	case TypeByte:
		return "byte"
	}
	return fmt.Sprintf("TokenType(%d)", int32(tt))
}

// silent reports whether tokens of this type decode to nothing, as in
// llama.cpp's token_to_piece with special=false.
func (tt TokenType) silent() bool { return tt == TypeControl || tt == TypeUnknown }

// denseMin is the number of children from which a trie node gets a dense
// 256-entry child table instead of a sorted label list.
const denseMin = 12

// node is one trie node. Its children are either the edges
// labels/kids[first:first+n] (labels sorted ascending) or, when dense >= 0,
// the 256 entries dense[dense:dense+256] (-1 where there is no child).
type node struct {
	id    int32 // token whose piece ends here, or -1
	first int32
	n     int32
	dense int32
}

// Tokenizer is a greedy longest-match byte tokenizer over a fixed vocabulary,
// the algorithm of llama.cpp's RWKV tokenizer. It is immutable after New and
// safe for concurrent use.
type Tokenizer struct {
	data  []byte  // all pieces, concatenated
	offs  []int32 // piece i is data[offs[i]:offs[i+1]]
	types []TokenType

	nodes  []node // nodes[0] is the root
	labels []byte
	kids   []int32
	dense  []int32
}

// New builds a tokenizer in which token id i has the raw bytes pieces[i] and
// the type types[i]. types may be nil, meaning every token is TypeNormal;
// otherwise it must have the same length as pieces. Every piece must be
// non-empty. The pieces are copied.
//
// Every token takes part in encoding whatever its type, as in llama.cpp (so
// the text "<s>" encodes to the id of the piece "<s>"). When two ids have the
// same bytes, the higher id is the one Encode produces, as in llama.cpp where
// the later insertion into the trie wins; both still decode.
func New(pieces [][]byte, types []TokenType) (*Tokenizer, error) {
	if types != nil && len(types) != len(pieces) {
		return nil, fmt.Errorf("tokenizer: %d pieces but %d token types", len(pieces), len(types))
	}
	if len(pieces) >= 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: too many pieces (%d)", len(pieces))
	}
	total := 0
	for i, p := range pieces {
		if len(p) == 0 {
			return nil, fmt.Errorf("tokenizer: piece of token id %d is empty", i)
		}
		total += len(p)
		if total >= 1<<31-1 {
			return nil, fmt.Errorf("tokenizer: pieces too large (over 2 GiB)")
		}
	}
	t := &Tokenizer{
		data:  make([]byte, 0, total),
		offs:  make([]int32, len(pieces)+1),
		types: make([]TokenType, len(pieces)),
	}
	for i, p := range pieces {
		t.data = append(t.data, p...)
		t.offs[i+1] = int32(len(t.data))
		if types == nil {
			t.types[i] = TypeNormal
		} else {
			t.types[i] = types[i]
		}
	}
	t.buildTrie()
	return t, nil
}

// FromEscaped builds a tokenizer from a GGUF file's tokenizer.ggml.tokens
// (escaped strings, see Unescape) and tokenizer.ggml.token_type arrays.
// types may be nil (every token normal). An entry that does not unescape is
// an error naming its id.
func FromEscaped(tokens []string, types []int32) (*Tokenizer, error) {
	if types != nil && len(types) != len(tokens) {
		return nil, fmt.Errorf("tokenizer: %d tokens but %d token types", len(tokens), len(types))
	}
	pieces := make([][]byte, len(tokens))
	for i, s := range tokens {
		p, err := Unescape(s)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: token id %d: %w", i, err)
		}
		pieces[i] = p
	}
	var tt []TokenType
	if types != nil {
		tt = make([]TokenType, len(types))
		for i, v := range types {
			tt[i] = TokenType(v)
		}
	}
	return New(pieces, tt)
}

func (t *Tokenizer) piece(id int32) []byte {
	return t.data[t.offs[id]:t.offs[id+1]:t.offs[id+1]]
}

// buildTrie builds the trie from the pieces sorted bytewise, so that the
// children of every node are created in ascending order and stored
// contiguously.
func (t *Tokenizer) buildTrie() {
	order := make([]int32, len(t.types))
	for i := range order {
		order[i] = int32(i)
	}
	// Stable, so equal pieces stay in id order and the last (highest) id wins.
	slices.SortStableFunc(order, func(a, b int32) int {
		return bytes.Compare(t.piece(a), t.piece(b))
	})
	t.nodes = make([]node, 0, len(order)*3)
	t.labels = make([]byte, 0, len(order)*3)
	t.kids = make([]int32, 0, len(order)*3)
	t.build(order, 0)
	if t.nodes[0].dense < 0 { // an empty vocabulary: the root still needs its table
		t.nodes[0].dense = int32(len(t.dense))
		for range 256 {
			t.dense = append(t.dense, -1)
		}
	}
	t.nodes = slices.Clip(t.nodes)
	t.labels = slices.Clip(t.labels)
	t.kids = slices.Clip(t.kids)
}

// build creates the node for the common prefix of length depth of the
// sorted pieces order and, recursively, its subtree; it returns the node's
// index.
func (t *Tokenizer) build(order []int32, depth int) int32 {
	idx := int32(len(t.nodes))
	t.nodes = append(t.nodes, node{id: -1, dense: -1})
	i := 0
	for i < len(order) && len(t.piece(order[i])) == depth {
		t.nodes[idx].id = order[i]
		i++
	}
	rest := order[i:]
	k := 0
	for j := 0; j < len(rest); {
		c := t.piece(rest[j])[depth]
		for j < len(rest) && t.piece(rest[j])[depth] == c {
			j++
		}
		k++
	}
	if k == 0 {
		return idx
	}
	first := len(t.labels)
	t.labels = append(t.labels, make([]byte, k)...)
	t.kids = append(t.kids, make([]int32, k)...)
	t.nodes[idx].first = int32(first)
	t.nodes[idx].n = int32(k)
	e := first
	for j := 0; j < len(rest); {
		c := t.piece(rest[j])[depth]
		s := j
		for j < len(rest) && t.piece(rest[j])[depth] == c {
			j++
		}
		kid := t.build(rest[s:j], depth+1)
		t.labels[e] = c
		t.kids[e] = kid
		e++
	}
	if k >= denseMin || idx == 0 {
		d := len(t.dense)
		for range 256 {
			t.dense = append(t.dense, -1)
		}
		for e := first; e < first+k; e++ {
			t.dense[d+int(t.labels[e])] = t.kids[e]
		}
		t.nodes[idx].dense = int32(d)
	}
	return idx
}

// child returns the child of node n for byte c, or -1.
func (t *Tokenizer) child(n *node, c byte) int32 {
	if n.dense >= 0 {
		return t.dense[n.dense+int32(c)]
	}
	labels := t.labels[n.first : n.first+n.n]
	for i, l := range labels {
		if l >= c {
			if l == c {
				return t.kids[int(n.first)+i]
			}
			return -1
		}
	}
	return -1
}

// NoTokenError is the error Encode returns when no token of the vocabulary is
// a prefix of the remaining text. It cannot happen with a vocabulary holding
// all 256 single bytes (such as RWKV World), only with a cut or synthetic one.
// (llama.cpp would emit id -1 and skip the byte, or loop forever when a longer
// token starts with the byte but no token is a prefix of the text.)
type NoTokenError struct {
	Offset int  // byte offset in the text
	Byte   byte // the byte at Offset
}

// Error describes the offset and byte.
func (e *NoTokenError) Error() string {
	return fmt.Sprintf("tokenizer: no token matches the text at byte offset %d (byte 0x%02x)", e.Offset, e.Byte)
}

// Encode splits text into token ids by greedy longest match: at each
// position it takes the longest piece that is a prefix of the remaining text.
// Every token takes part, including control and unused ones, as in
// llama.cpp's RWKV tokenizer. No BOS or EOS is added. The text is taken as
// raw bytes (no validation, normalisation or pre-tokenisation). If no piece
// is a prefix of the text at some offset, Encode returns nil and a
// *NoTokenError.
func (t *Tokenizer) Encode(text []byte) ([]int, error) {
	ids, err := t.AppendEncode(make([]int, 0, len(text)/3+1), text)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// AppendEncode is Encode appending the ids to dst. On error it returns dst
// unchanged and a *NoTokenError.
func (t *Tokenizer) AppendEncode(dst []int, text []byte) ([]int, error) {
	nodes := t.nodes
	root := t.dense[nodes[0].dense : nodes[0].dense+256]
	start := len(dst)
	for p := 0; p < len(text); {
		ni := root[text[p]]
		if ni < 0 {
			return dst[:start], &NoTokenError{Offset: p, Byte: text[p]}
		}
		n := &nodes[ni]
		best, end := n.id, p+1
		for q := p + 1; q < len(text) && n.n > 0; q++ {
			ni = t.child(n, text[q])
			if ni < 0 {
				break
			}
			n = &nodes[ni]
			if n.id >= 0 {
				best, end = n.id, q+1
			}
		}
		if best < 0 {
			return dst[:start], &NoTokenError{Offset: p, Byte: text[p]}
		}
		dst = append(dst, int(best))
		p = end
	}
	return dst, nil
}

// Decode concatenates the pieces of ids. Control and unknown tokens decode to
// nothing (llama.cpp's detokenizer with special=false), so with a World
// vocabulary id 0 vanishes while [PADn] tokens decode to their literal text.
// An id out of range is an error naming it and its position.
func (t *Tokenizer) Decode(ids []int) ([]byte, error) {
	return t.AppendDecode(nil, ids)
}

// AppendDecode is Decode appending the bytes to dst. On error it returns dst
// unchanged.
func (t *Tokenizer) AppendDecode(dst []byte, ids []int) ([]byte, error) {
	start := len(dst)
	for i, id := range ids {
		if id < 0 || id >= len(t.types) {
			return dst[:start], fmt.Errorf("tokenizer: decode: id %d at position %d out of range [0, %d)", id, i, len(t.types))
		}
		if t.types[id].silent() {
			continue
		}
		dst = append(dst, t.piece(int32(id))...)
	}
	return dst, nil
}

// Piece returns a copy of the raw bytes of token id, whatever its type (for
// a World vocabulary id 0 gives "<s>"). An id out of range is an error.
func (t *Tokenizer) Piece(id int) ([]byte, error) {
	if id < 0 || id >= len(t.types) {
		return nil, fmt.Errorf("tokenizer: piece: id %d out of range [0, %d)", id, len(t.types))
	}
	return bytes.Clone(t.piece(int32(id))), nil
}

// VocabSize returns the number of token ids.
func (t *Tokenizer) VocabSize() int { return len(t.types) }

// TokenType returns the type of token id, or TypeUndefined for an id out of
// range.
func (t *Tokenizer) TokenType(id int) TokenType {
	if id < 0 || id >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}
