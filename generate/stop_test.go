package generate

import (
	"bytes"
	"strings"
	"testing"
)

// splits calls f with every way of cutting s into consecutive non-empty
// pieces when s is short (2^(len-1) ways), and otherwise with every way of
// cutting it into at most four pieces.
func splits(s string, f func(pieces []string)) {
	n := len(s)
	if n <= 16 {
		for mask := 0; mask < 1<<max(n-1, 0); mask++ {
			var pieces []string
			start := 0
			for i := 1; i < n; i++ {
				if mask&(1<<(i-1)) != 0 {
					pieces = append(pieces, s[start:i])
					start = i
				}
			}
			f(append(pieces, s[start:]))
		}
		return
	}
	for a := 1; a <= n; a++ {
		for b := a; b <= n; b++ {
			for c := b; c <= n; c++ {
				cuts := []int{0, a, b, c, n}
				var pieces []string
				for i := 0; i+1 < len(cuts); i++ {
					if cuts[i+1] > cuts[i] {
						pieces = append(pieces, s[cuts[i]:cuts[i+1]])
					}
				}
				f(pieces)
			}
		}
	}
}

// holdable reports whether rest is empty or a proper prefix of one of stops.
func holdable(rest string, stops []string) bool {
	if rest == "" {
		return true
	}
	for _, s := range stops {
		if len(rest) < len(s) && strings.HasPrefix(s, rest) {
			return true
		}
	}
	return false
}

func TestStopMatcherSplits(t *testing.T) {
	cases := []struct {
		name  string
		rules StopRules
		text  string
		want  string // the released text
		stop  string // the stop string found, "" for none
	}{
		{"end of turn", StopRules{EndOfTurn: true}, " Hi\nyou\n\nUser:", " Hi\nyou", "\n\n"},
		{"end of turn first", StopRules{EndOfTurn: true}, "\n\nabc", "", "\n\n"},
		{"end of turn in a run", StopRules{EndOfTurn: true}, " a \n\n\n", " a ", "\n\n"},
		{"single newline kept", StopRules{EndOfTurn: true}, "a\nb\nc\n", "a\nb\nc\n", ""},
		{"no rules", StopRules{}, "a\n\nb", "a\n\nb", ""},
		{"several stops", StopRules{Strings: []string{"###", "END", "EN!"}}, "a#b##ENc###dEND", "a#b##ENc", "###"},
		{"second stop first", StopRules{Strings: []string{"###", "EN!"}}, "x#EN!##y###", "x#", "EN!"},
		{"overlapping prefix", StopRules{Strings: []string{"aab"}}, "aaab", "a", "aab"},
		{"prefix never completed", StopRules{Strings: []string{"abcd"}}, "abcabxabc", "abcabxabc", ""},
		{"multibyte stop", StopRules{Strings: []string{"。\n"}}, "文。文。\n後", "文。文", "。\n"},
		{"stop and end of turn", StopRules{Strings: []string{"User:"}, EndOfTurn: true}, "ok User:\n\n", "ok ", "User:"},
	}
	for _, c := range cases {
		stops := append([]string(nil), c.rules.Strings...)
		if c.rules.EndOfTurn {
			stops = append(stops, EndOfTurn)
		}
		splits(c.text, func(pieces []string) {
			m, err := NewStopMatcher(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			var out, received string
			stopped := false
			for _, p := range pieces {
				got, s := m.Add([]byte(p))
				out += string(got)
				received += p
				if stopped && len(got) > 0 {
					t.Fatalf("%s %q: released %q after the stop", c.name, pieces, got)
				}
				stopped = s
				if !stopped {
					// Everything received is released except a tail that
					// could still start a stop string.
					if !strings.HasPrefix(received, out) || !holdable(received[len(out):], stops) {
						t.Fatalf("%s %q: after %q released %q, holding %q", c.name, pieces, received, out, received[min(len(out), len(received)):])
					}
					if m.Held() != len(received)-len(out) {
						t.Fatalf("%s %q: Held() = %d, want %d", c.name, pieces, m.Held(), len(received)-len(out))
					}
				}
			}
			if !stopped {
				out += string(m.Flush())
			}
			found, ok := m.Found()
			if out != c.want || found != c.stop || ok != (c.stop != "") || stopped != ok {
				t.Fatalf("%s %q: released %q, stop %q (%v, Add said %v); want %q, stop %q", c.name, pieces, out, found, ok, stopped, c.want, c.stop)
			}
		})
	}
}

func TestStopMatcherAfterGuard(t *testing.T) {
	rules := StopRules{EndOfTurn: true, EndOfTurnAfter: "</think>"}
	cases := []struct {
		text, want string
		stopped    bool
	}{
		{">\nstep 1\n\nstep 2</think> The answer.\n\nUser:", ">\nstep 1\n\nstep 2</think> The answer.", true},
		{"</think>\n\nrest", "</think>", true},
		{"a\n\n</think>b\n\n", "a\n\n</think>b", true},
		{"a\n\n</thin>b\n\nc", "a\n\n</thin>b\n\nc", false},
		{"</think\n\n>x", "</think\n\n>x", false},
		{"\n\n</think></think>\n\n", "\n\n</think></think>", true},
	}
	for _, c := range cases {
		splits(c.text, func(pieces []string) {
			m, err := NewStopMatcher(rules)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			stopped := false
			for _, p := range pieces {
				got, s := m.Add([]byte(p))
				out.Write(got)
				stopped = s
			}
			if !stopped {
				out.Write(m.Flush())
			}
			if out.String() != c.want || stopped != c.stopped {
				t.Fatalf("%q: released %q (stopped %v), want %q (stopped %v)", pieces, out.String(), stopped, c.want, c.stopped)
			}
		})
	}
}

func TestStopMatcherHoldsOnlyWhatCouldMatch(t *testing.T) {
	// Step by step, with the expected release of every call written out.
	m, err := NewStopMatcher(StopRules{Strings: []string{"<|end|>"}, EndOfTurn: true})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct{ in, out string }{
		{"Hello", "Hello"},
		{" <", " "},    // "<" could start "<|end|>"
		{"|e", ""},     // "<|e" still could
		{"x", "<|ex"},  // no longer
		{"\n", ""},     // could start "\n\n"
		{"a<|", "\na"}, // "\n" released, "<|" held
		{"end|", ""},   // "<|end|" held
		{"> tail", ""}, // stop: nothing more
		{"more", ""},   // after the stop
	}
	for i, s := range steps {
		got, _ := m.Add([]byte(s.in))
		if string(got) != s.out {
			t.Fatalf("step %d: Add(%q) = %q, want %q", i+1, s.in, got, s.out)
		}
	}
	if f, ok := m.Found(); !ok || f != "<|end|>" {
		t.Errorf("Found() = %q, %v; want \"<|end|>\", true", f, ok)
	}
	if got := m.Flush(); len(got) != 0 {
		t.Errorf("Flush after the stop = %q, want nothing", got)
	}
}

func TestStopRulesValidate(t *testing.T) {
	bad := []struct {
		r    StopRules
		want string
	}{
		{StopRules{Strings: []string{"a", ""}}, "stop string 2 is empty"},
		{StopRules{Strings: []string{"\xe2\x82"}}, "not valid UTF-8"},
		{StopRules{EndOfTurnAfter: "</think>"}, "end-of-turn rule is off"},
	}
	for _, c := range bad {
		if _, err := NewStopMatcher(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewStopMatcher(%+v) error %v, want one containing %q", c.r, err, c.want)
		}
	}
}

func TestChatStopRules(t *testing.T) {
	if r := (ChatOptions{}).StopRules(); !r.EndOfTurn || r.EndOfTurnAfter != "" || len(r.Strings) != 0 || r.IgnoreEOS {
		t.Errorf("plain chat rules %+v, want only EndOfTurn", r)
	}
	if r := (ChatOptions{Think: ThinkFast}).StopRules(); !r.EndOfTurn || r.EndOfTurnAfter != "" {
		t.Errorf("fast-think rules %+v, want EndOfTurn from the start (the prompt closes the reasoning)", r)
	}
	r := ChatOptions{Think: ThinkOn}.StopRules()
	if !r.EndOfTurn || r.EndOfTurnAfter != "</think>" || len(r.Strings) != 1 || r.Strings[0] != "\n\nUser:" {
		t.Errorf("reasoning rules %+v, want EndOfTurn after </think> and the stop string \"\\n\\nUser:\"", r)
	}
}
