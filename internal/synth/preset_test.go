package synth

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// pmm is spec/rwkv7.md §9's count of matmul weight elements read per token.
func pmm(c model.Config) int64 {
	L, D, F, V := int64(c.Layers), int64(c.Dim), int64(c.FFN), int64(c.Vocab)
	rw, ra, rv, rg := int64(c.RankW), int64(c.RankA), int64(c.RankV), int64(c.RankG)
	return L*(4*D*D+2*D*F+2*D*(rw+ra+rg)) + (L-1)*2*D*rv + V*D
}

func TestPresetsMatchSpec(t *testing.T) {
	// spec/rwkv7.md §9: L, D, ranks w/a/v/g and P_mm in units of 0.1 M.
	want := []struct {
		name           string
		layers, dim    int
		rw, ra, rv, rg int
		pmmTenthM      int64
	}{
		{"0.1b", 12, 768, 64, 64, 32, 128, 1405},
		{"0.4b", 24, 1024, 64, 64, 32, 160, 3848},
		{"1.5b", 24, 2048, 96, 96, 64, 256, 13922},
		{"2.9b", 32, 2560, 96, 96, 64, 320, 27784},
		{"7.2b", 32, 4096, 128, 128, 96, 480, 69282},
		{"13.3b", 61, 4096, 128, 128, 96, 480, 129643},
	}
	for _, w := range want {
		p, err := PresetByName(w.name)
		require.NoError(t, err)
		c := p.Config
		require.Equal(t, []int{w.layers, w.dim, 4 * w.dim, 64, w.dim / 64, w.rw, w.ra, w.rv, w.rg, 65536},
			[]int{c.Layers, c.Dim, c.FFN, c.HeadSize, c.Heads, c.RankW, c.RankA, c.RankV, c.RankG, c.Vocab}, w.name)
		require.Equal(t, float32(1e-5), c.Eps)
		require.Equal(t, "synthetic RWKV7 "+w.name, c.Name)
		got := pmm(c)
		require.Equal(t, w.pmmTenthM, (got+50_000)/100_000, "%s: P_mm = %d", w.name, got)
	}
	require.Len(t, Presets(), len(want)+1)
}

func TestTinyPresetIsFixtureShape(t *testing.T) {
	p, err := PresetByName("tiny")
	require.NoError(t, err)
	require.Equal(t, model.Config{
		Name: "synthetic RWKV7 tiny", Layers: 3, Dim: 256, HeadSize: 64, Heads: 4, FFN: 1024,
		RankW: 32, RankA: 64, RankV: 32, RankG: 96, Vocab: 1024, Eps: 1e-5,
	}, p.Config)

	f, err := gguf.Open(fixtures.Path(t, "tiny", "rwkv7-tiny-F32.gguf"))
	require.NoError(t, err)
	defer f.Close()
	c, err := model.ConfigFromGGUF(f)
	require.NoError(t, err)
	require.Equal(t, c, p.Config)
}

func TestPresetByName(t *testing.T) {
	p, err := PresetByName("13.3B")
	require.NoError(t, err)
	require.Equal(t, "13.3b", p.Name)
	_, err = PresetByName("3b")
	require.ErrorContains(t, err, `unknown preset "3b"`)
	require.ErrorContains(t, err, "tiny, 0.1b, 0.4b, 1.5b, 2.9b, 7.2b, 13.3b")
}
