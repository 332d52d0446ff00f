package generate

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// testTokenizer returns a vocabulary with id 0 = "<s>" (control, decodes to
// nothing) and ids 1, 2, ... = pieces.
func testTokenizer(t *testing.T, pieces ...string) *tokenizer.Tokenizer {
	t.Helper()
	raw := [][]byte{[]byte("<s>")}
	types := []tokenizer.TokenType{tokenizer.TypeControl}
	for _, p := range pieces {
		raw = append(raw, []byte(p))
		types = append(types, tokenizer.TypeNormal)
	}
	tok, err := tokenizer.New(raw, types)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// step is one Add with the text it must return and whether it ends.
type step struct {
	id   int
	out  string
	done bool
}

func runSteps(t *testing.T, name string, s *Streamer, steps []step) {
	t.Helper()
	for i, st := range steps {
		out, done, err := s.Add(st.id)
		if err != nil {
			t.Fatalf("%s: step %d: Add(%d): %v", name, i+1, st.id, err)
		}
		if out != st.out || done != st.done {
			t.Fatalf("%s: step %d: Add(%d) = %q, %v; want %q, %v", name, i+1, st.id, out, done, st.out, st.done)
		}
	}
}

func TestStreamerMultibyteSplit(t *testing.T) {
	// "€" = E2 82 AC and "😀" = F0 9F 98 80 split over several tokens.
	tok := testTokenizer(t, "Price ", "\xe2", "\x82\xac", " and ", "\xf0\x9f", "\x98", "\x80", "!")
	s, err := NewStreamer(tok, StopRules{}, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runSteps(t, "multibyte", s, []step{
		{1, "Price ", false}, {2, "", false}, {3, "€", false}, {4, " and ", false},
		{5, "", false}, {6, "", false}, {7, "😀", false}, {8, "!", false},
	})
	if got := s.Finish(); got != "" {
		t.Errorf("Finish = %q, want \"\"", got)
	}
	if s.Text() != "Price € and 😀!" || s.Reason() != NotStopped || s.Tokens() != 8 {
		t.Errorf("Text %q, Reason %v, Tokens %d; want \"Price € and 😀!\", none, 8", s.Text(), s.Reason(), s.Tokens())
	}
}

// TestStreamerEverySplit cuts texts into tokens in every possible way and
// checks that no piece of output is half a character, that the stop rules
// hold, and what the whole output is.
func TestStreamerEverySplit(t *testing.T) {
	cases := []struct {
		name  string
		rules StopRules
		text  string
		want  string
		stop  string
	}{
		{"end of turn", StopRules{EndOfTurn: true}, "a€b😀中\n\nc", "a€b😀中", "\n\n"},
		{"multibyte stop", StopRules{Strings: []string{"中\n"}}, "a中b中\nx", "a中b", "中\n"},
		{"emoji stop", StopRules{Strings: []string{"😀!"}}, "😀?😀!é", "😀?", "😀!"},
		{"no stop", StopRules{EndOfTurn: true}, "é\nü€", "é\nü€", ""},
	}
	for _, c := range cases {
		splits(c.text, func(pieces []string) {
			tok := testTokenizer(t, pieces...)
			s, err := NewStreamer(tok, c.rules, StreamOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var out string
			for i := range pieces {
				got, done, err := s.Add(i + 1)
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(got) {
					t.Fatalf("%s %q: token %d returned %q, not whole characters", c.name, pieces, i+1, got)
				}
				out += got
				if done {
					break
				}
			}
			out += s.Finish()
			if out != c.want || s.StopString() != c.stop || s.Text() != c.want {
				t.Fatalf("%s %q: output %q (Text %q), stop %q; want %q, stop %q", c.name, pieces, out, s.Text(), s.StopString(), c.want, c.stop)
			}
			wantReason := NotStopped
			if c.stop != "" {
				wantReason = StopString
			}
			if s.Reason() != wantReason {
				t.Fatalf("%s %q: Reason %v, want %v", c.name, pieces, s.Reason(), wantReason)
			}
			// Generated is what the tokens fed so far decode to.
			var fed strings.Builder
			for _, p := range pieces[:s.Tokens()] {
				fed.WriteString(p)
			}
			if string(s.Generated()) != fed.String() {
				t.Fatalf("%s %q: Generated %q, want %q", c.name, pieces, s.Generated(), fed.String())
			}
		})
	}
}

func TestStreamerInvalidBytes(t *testing.T) {
	pieces := []string{"\xff", "A", "\xe2\x82", "B", "\xf0"}
	steps := []step{{1, "\ufffd", false}, {2, "A", false}, {3, "", false}, {4, "\ufffd\ufffdB", false}, {5, "", false}}
	s, _ := NewStreamer(testTokenizer(t, pieces...), StopRules{}, StreamOptions{})
	runSteps(t, "replaced", s, steps)
	if got := s.Finish(); got != "\ufffd" {
		t.Errorf("Finish = %q, want U+FFFD for the lone F0", got)
	}

	raw := []step{{1, "\xff", false}, {2, "A", false}, {3, "", false}, {4, "\xe2\x82B", false}, {5, "", false}}
	s, _ = NewStreamer(testTokenizer(t, pieces...), StopRules{}, StreamOptions{RawBytes: true})
	runSteps(t, "raw", s, raw)
	if got := s.Finish(); got != "\xf0" {
		t.Errorf("raw Finish = %q, want \"\\xf0\"", got)
	}
}

func TestStreamerEOS(t *testing.T) {
	tok := testTokenizer(t, "ab", "\n", "\xe2")
	s, _ := NewStreamer(tok, StopRules{EndOfTurn: true}, StreamOptions{})
	runSteps(t, "eos", s, []step{{1, "ab", false}, {2, "", false}, {0, "\n", true}, {1, "", true}})
	if s.Reason() != StopEOS || s.Text() != "ab\n" || s.Tokens() != 3 || s.Finish() != "" {
		t.Errorf("Reason %v, Text %q, Tokens %d; want eos, \"ab\\n\", 3", s.Reason(), s.Text(), s.Tokens())
	}

	s, _ = NewStreamer(tok, StopRules{}, StreamOptions{})
	runSteps(t, "eos after half a character", s, []step{{1, "ab", false}, {3, "", false}, {0, "\ufffd", true}})
	if string(s.Generated()) != "ab\xe2" {
		t.Errorf("Generated %q, want \"ab\\xe2\"", s.Generated())
	}

	s, _ = NewStreamer(tok, StopRules{IgnoreEOS: true}, StreamOptions{})
	runSteps(t, "ignore eos", s, []step{{1, "ab", false}, {0, "", false}, {1, "ab", false}})
}

func TestStreamerStopInsideToken(t *testing.T) {
	tok := testTokenizer(t, " yes", "\n\nUser", ":")
	s, _ := NewStreamer(tok, StopRules{EndOfTurn: true}, StreamOptions{TrimLeadingSpace: true})
	runSteps(t, "stop inside a token", s, []step{{1, "yes", false}, {2, "", true}, {3, "", true}})
	if s.Reason() != StopString || s.StopString() != "\n\n" || string(s.Generated()) != " yes\n\nUser" || s.Text() != "yes" {
		t.Errorf("Reason %v, StopString %q, Generated %q, Text %q", s.Reason(), s.StopString(), s.Generated(), s.Text())
	}
}

func TestStreamerTrimLeadingSpace(t *testing.T) {
	tok := testTokenizer(t, " ", "Hi", " there", "\n")
	s, _ := NewStreamer(tok, StopRules{EndOfTurn: true}, StreamOptions{TrimLeadingSpace: true})
	runSteps(t, "lone space", s, []step{{1, "", false}, {2, "Hi", false}, {3, " there", false}, {1, " ", false}})
	s, _ = NewStreamer(tok, StopRules{EndOfTurn: true}, StreamOptions{TrimLeadingSpace: true})
	// The first output is held back (a possible "\n\n"), then released.
	runSteps(t, "held first", s, []step{{4, "", false}, {3, "\n there", false}})
	s, _ = NewStreamer(tok, StopRules{}, StreamOptions{})
	runSteps(t, "no trim", s, []step{{3, " there", false}})
}

func TestStreamerBadToken(t *testing.T) {
	s, _ := NewStreamer(testTokenizer(t, "a"), StopRules{}, StreamOptions{})
	if _, _, err := s.Add(2); err == nil || !strings.Contains(err.Error(), "token 2 is outside the vocabulary [0, 2)") {
		t.Errorf("Add(2) error %v, want one naming token 2 and the vocabulary", err)
	}
	if _, _, err := s.Add(-1); err == nil {
		t.Errorf("Add(-1): no error")
	}
	if s.Tokens() != 0 || s.Done() {
		t.Errorf("a bad token changed the streamer: Tokens %d, Done %v", s.Tokens(), s.Done())
	}
	if _, err := NewStreamer(testTokenizer(t, "a"), StopRules{Strings: []string{""}}, StreamOptions{}); err == nil {
		t.Errorf("NewStreamer with an empty stop string: no error")
	}
}
