package serve

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

func thinkMode(i int) generate.Think { return generate.Think(i) }

// fakeSession records whether it was closed; the cache only closes
// sessions.
type fakeSession struct {
	model.Session
	name   string
	closed bool
}

func (f *fakeSession) Close() error { f.closed = true; return nil }

// TestServePrefixCacheLongestPrefixAndLRU: lookup returns the longest cached
// sequence that is a prefix of the tokens within the length bound;
// inserting into a full cache evicts the least recently used entry (a
// lookup counts as a use) and closes its session; a duplicate is closed
// at once.
func TestServePrefixCacheLongestPrefixAndLRU(t *testing.T) {
	c := newPrefixCache(3)
	evictions := 0
	c.onEvict = func() { evictions++ }
	a, b, d := &fakeSession{name: "a"}, &fakeSession{name: "b"}, &fakeSession{name: "d"}
	c.insert([]int{1, 2}, a)
	c.insert([]int{1, 2, 3, 4}, b)
	c.insert([]int{7}, d)

	require.Same(t, b, c.lookup([]int{1, 2, 3, 4, 5}, 4).s, "the longest prefix")
	require.Same(t, a, c.lookup([]int{1, 2, 3, 4, 5}, 3).s, "within maxLen")
	require.Same(t, a, c.lookup([]int{1, 2, 9}, 2).s)
	require.Nil(t, c.lookup([]int{1, 3}, 2), "no entry is a prefix")
	require.Nil(t, c.lookup([]int{2, 1, 2}, 3), "prefixes only, not substrings")
	require.Nil(t, c.lookup([]int{7}, 0), "maxLen 0")

	dup := &fakeSession{name: "dup"}
	c.insert([]int{1, 2}, dup)
	require.True(t, dup.closed, "a duplicate is closed")
	require.Equal(t, 3, c.Len())

	// Uses so far, oldest first: d (inserted), b, a (looked up, then the
	// duplicate). A fourth entry evicts d.
	e := &fakeSession{name: "e"}
	c.insert([]int{5, 5}, e)
	require.True(t, d.closed, "the least recently used entry is evicted and closed")
	require.False(t, a.closed || b.closed || e.closed)
	require.Equal(t, 1, evictions)
	require.Nil(t, c.lookup([]int{7, 1}, 2))

	require.True(t, c.evict(c.lookup([]int{1, 2, 3, 4}, 4)), "evict other than the kept entry")
	require.True(t, a.closed, "a was older than e")
	require.False(t, b.closed)

	c.clear()
	require.True(t, b.closed && e.closed)
	require.Equal(t, 0, c.Len())
	require.False(t, c.evict(nil))

	none := newPrefixCache(0)
	f := &fakeSession{}
	none.insert([]int{1}, f)
	require.True(t, f.closed, "a cache of capacity 0 keeps nothing")
}

// TestServeReplyShaper: the answer split into reasoning and content, fed in
// pieces that cut "</think>" and the leading ">" anywhere.
func TestServeReplyShaper(t *testing.T) {
	cases := []struct {
		name               string
		think              int // generate.Think
		pieces             []string
		reasoning, content string
	}{
		{"off", 0, []string{"Hello", " there"}, "", "Hello there"},
		{"on", 1, []string{">", "\nLet me", " think.</th", "ink>", " The answer."}, "Let me think.", "The answer."},
		{"on, tag in one piece", 1, []string{">\nA</think>\n\nB"}, "A", "B"},
		{"on, unfinished tag", 1, []string{"> A </thi"}, "A </thi", ""},
		{"on, a '<' that is not the tag", 1, []string{"> a <b", "> c</think>d"}, "a <b> c", "d"},
		{"fast", 2, []string{">", " Quick", " answer"}, "", "Quick answer"},
		{"fast inline", 3, []string{"> Hi"}, "", "Hi"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReplyShaper(thinkMode(c.think))
			var rs, cs string
			for _, p := range c.pieces {
				a, b := r.add(p)
				rs, cs = rs+a, cs+b
			}
			a, b := r.finish()
			require.Equal(t, c.reasoning, rs+a)
			require.Equal(t, c.content, cs+b)
		})
	}
}

// TestServeChatSegments: a G-series prompt cut after each blank line and each
// "Assistant:" label; the pieces join back into the prompt.
func TestServeChatSegments(t *testing.T) {
	prompt := "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Bye\n\nAssistant: <think"
	want := []string{"System: Be brief.\n\n", "User: Hi\n\n", "Assistant:", " Hello!\n\n", "User: Bye\n\n", "Assistant:", " <think"}
	require.Equal(t, want, chatSegments(prompt))
	require.Equal(t, []string{"User: a\n\n", "Assistant:"}, chatSegments("User: a\n\nAssistant:"))
}
