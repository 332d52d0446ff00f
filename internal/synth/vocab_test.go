package synth

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

func TestVocabEqualsFixture(t *testing.T) {
	f, err := gguf.Open(fixtures.Path(t, "vocab", "rwkv-world-vocab.gguf"))
	require.NoError(t, err)
	defer f.Close()
	wantTokens, err := f.Strings(model.KeyTokens)
	require.NoError(t, err)
	wantTypes, err := f.Int32s(model.KeyTokenTypes)
	require.NoError(t, err)

	tokens, types, err := Vocab(WorldVocabSize)
	require.NoError(t, err)
	require.Equal(t, wantTokens, tokens)
	require.Equal(t, wantTypes, types)
}

func TestVocabTypes(t *testing.T) {
	tokens, types, err := Vocab(WorldVocabSize)
	require.NoError(t, err)
	require.Len(t, tokens, WorldVocabSize)
	require.Equal(t, "<s>", tokens[0])
	require.Equal(t, `\n\n`, tokens[261])
	counts := map[int32]int{}
	for i, tt := range types {
		counts[tt]++
		switch {
		case i == 0:
			require.Equal(t, int32(3), tt)
		case i >= 65530:
			require.Equal(t, int32(5), tt, tokens[i])
		default:
			require.Equal(t, int32(1), tt, tokens[i])
		}
	}
	require.Equal(t, map[int32]int{1: 65529, 3: 1, 5: 6}, counts)

	small, smallTypes, err := Vocab(1024)
	require.NoError(t, err)
	require.Equal(t, tokens[:1024], small)
	require.Equal(t, types[:1024], smallTypes)

	for _, n := range []int{0, -1, WorldVocabSize + 1} {
		_, _, err := Vocab(n)
		require.Error(t, err, n)
	}
}

// TestVocabRoundTrip checks that every token's bytes encode back to that
// single token with the full vocabulary.
func TestVocabRoundTrip(t *testing.T) {
	tokens, types, err := Vocab(WorldVocabSize)
	require.NoError(t, err)
	tok, err := tokenizer.FromEscaped(tokens, types)
	require.NoError(t, err)
	checkRoundTrip(t, tok, tokens)
}

// checkRoundTrip checks each id's piece against its escaped string and that
// the piece encodes to exactly that id.
func checkRoundTrip(t *testing.T, tok *tokenizer.Tokenizer, tokens []string) {
	t.Helper()
	require.Equal(t, len(tokens), tok.VocabSize())
	for id, s := range tokens {
		want, err := tokenizer.Unescape(s)
		require.NoError(t, err, s)
		piece, err := tok.Piece(id)
		require.NoError(t, err)
		require.Equal(t, want, piece, "id %d", id)
		ids, err := tok.Encode(piece)
		require.NoError(t, err)
		require.Equal(t, []int{id}, ids, "id %d %q", id, s)
	}
}
