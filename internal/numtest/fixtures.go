package numtest

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// FixturePrompt returns the 48 prompt ids of the tiny fixtures (greedy.json).
func FixturePrompt(t testing.TB) []int {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "tiny", "greedy.json"))
	require.NoError(t, err)
	var g struct {
		PromptIDs []int `json:"prompt_ids"`
	}
	require.NoError(t, json.Unmarshal(b, &g))
	require.Len(t, g.PromptIDs, 48)
	return g.PromptIDs
}

// LoadFixture opens tiny/rwkv7-tiny-<typ>.gguf and binds its weights; the
// file is closed when the test ends.
func LoadFixture(t testing.TB, typ string) *model.Weights {
	t.Helper()
	f, err := gguf.Open(fixtures.Path(t, "tiny", "rwkv7-tiny-"+typ+".gguf"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	w, err := model.Load(f)
	require.NoError(t, err)
	return w
}
