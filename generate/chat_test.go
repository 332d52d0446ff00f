package generate

import (
	"strings"
	"testing"
)

// The expected strings below are written by hand from spec/tokenizer.md §5
// and llama.cpp's models/templates/llama-cpp-rwkv-world.jinja.

func TestCleanMessage(t *testing.T) {
	cases := []struct{ in, want string }{
		{"hello", "hello"},
		{"  hello \t", "hello"},
		{"a\r\nb", "a\nb"},
		{"a\n\nb", "a\nb"},
		{"a\n\n\n\nb", "a\nb"},
		{"a\r\n\r\nb", "a\nb"},
		{"a\r\n\nb", "a\nb"},
		{"\n\nline1\nline2\n\n", "line1\nline2"},
		{"a\n \nb", "a\n \nb"}, // not a run of newlines
		{"a\rb", "a\rb"},       // a lone CR stays
		{"\u3000全角\u00a0", "全角"},
		{"\x1fsep\x1c", "sep"}, // Python's strip() removes U+001C..U+001F
		{"", ""},
		{" \n\r\n ", ""},
	}
	for _, c := range cases {
		if got := CleanMessage(c.in); got != c.want {
			t.Errorf("CleanMessage(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStripThink(t *testing.T) {
	cases := []struct{ in, want string }{
		{" plain answer", " plain answer"},
		{"<think>\nreasoning\n</think> answer", " answer"},
		{">\nfirst</think>mid</think> last", " last"},
		{"<think> unfinished reasoning", "<think> unfinished reasoning"},
	}
	for _, c := range cases {
		if got := StripThink(c.in); got != c.want {
			t.Errorf("StripThink(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func user(s string) Message      { return Message{Role: RoleUser, Content: s} }
func assistant(s string) Message { return Message{Role: RoleAssistant, Content: s} }
func system(s string) Message    { return Message{Role: RoleSystem, Content: s} }

func TestPromptRWKV(t *testing.T) {
	cases := []struct {
		name string
		o    ChatOptions
		msgs []Message
		want string
	}{
		{"single turn", ChatOptions{}, []Message{user("What is 1+1?")},
			"User: What is 1+1?\n\nAssistant:"},
		{"cleaned", ChatOptions{}, []Message{user("  line one\r\n\r\n\nline two \n")},
			"User: line one\nline two\n\nAssistant:"},
		{"system", ChatOptions{}, []Message{system(" Be brief.\n\n"), user("Hi")},
			"System: Be brief.\n\nUser: Hi\n\nAssistant:"},
		{"empty system dropped", ChatOptions{}, []Message{system(" \n "), user("Hi")},
			"User: Hi\n\nAssistant:"},
		{"multi turn", ChatOptions{}, []Message{user("q1"), assistant(" a1"), user("q2")},
			"User: q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant:"},
		{"multi turn with system", ChatOptions{}, []Message{system("S"), user("q1"), assistant("a1\n\n"), user("q2"), assistant(" a2\nmore"), user("q3")},
			"System: S\n\nUser: q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant: a2\nmore\n\nUser: q3\n\nAssistant:"},
		{"answer loses reasoning", ChatOptions{Think: ThinkOn}, []Message{user("q1"), assistant(">\nLet me see.\n</think> It is 2."), user("q2")},
			"User: q1\n\nAssistant: It is 2.\n\nUser: q2\n\nAssistant: <think"},
		{"answer blank lines collapsed", ChatOptions{}, []Message{user("q1"), assistant(" para1\n\npara2"), user("q2")},
			"User: q1\n\nAssistant: para1\npara2\n\nUser: q2\n\nAssistant:"},
		{"think", ChatOptions{Think: ThinkOn}, []Message{user("Why?")},
			"User: Why?\n\nAssistant: <think"},
		{"fast think", ChatOptions{Think: ThinkFast}, []Message{user("Why?")},
			"User: Why?\n\nAssistant: <think>\n</think"},
		{"fast think inline", ChatOptions{Think: ThinkFastInline}, []Message{user("Why?")},
			"User: Why?\n\nAssistant: <think></think"},
		{"think", ChatOptions{Think: ThinkOn, Effort: EffortThink}, []Message{user("Why? ")},
			"User: Why? (think)\n\nAssistant: <think"},
		{"think a bit", ChatOptions{Think: ThinkOn, Effort: EffortBit}, []Message{user("Why?")},
			"User: Why? (think a bit)\n\nAssistant: <think"},
		{"think a lot, last message only", ChatOptions{Think: ThinkOn, Effort: EffortLot}, []Message{user("q1"), assistant("a1"), user("q2")},
			"User: q1\n\nAssistant: a1\n\nUser: q2 (think a lot)\n\nAssistant: <think"},
	}
	for _, c := range cases {
		got, err := c.o.Prompt(c.msgs)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestPromptLlamaCpp(t *testing.T) {
	ll := ChatOptions{Format: FormatLlamaCpp}
	cases := []struct {
		name string
		o    ChatOptions
		msgs []Message
		want string
	}{
		{"single turn", ll, []Message{user(" What is 1+1? ")},
			"<s>User: What is 1+1?\n\nAssistant:"},
		{"not cleaned inside", ll, []Message{user("a\n\nb")},
			"<s>User: a\n\nb\n\nAssistant:"},
		{"last system wins, untrimmed, first", ll, []Message{system("one"), user("q1"), assistant("a1"), system(" two "), user("q2")},
			"<s>System:  two \n\nUser: q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant:"},
		{"reasoning dropped", ll, []Message{user("q1"), assistant("<think>\nhm\n</think>\n\nIt is 2.\n"), user("q2")},
			"<s>User: q1\n\nAssistant: It is 2.\n\nUser: q2\n\nAssistant:"},
		{"enable_thinking true", ChatOptions{Format: FormatLlamaCpp, Think: ThinkOn}, []Message{user("q")},
			"<s>User: q\n\nAssistant: <think>"},
		{"enable_thinking false", ChatOptions{Format: FormatLlamaCpp, Think: ThinkFast}, []Message{user("q")},
			"<s>User: q\n\nAssistant: <think>\n</think>"},
	}
	for _, c := range cases {
		got, err := c.o.Prompt(c.msgs)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestPromptErrors(t *testing.T) {
	cases := []struct {
		name string
		o    ChatOptions
		msgs []Message
		want string // part of the error message
	}{
		{"no messages", ChatOptions{}, nil, "at least one user message"},
		{"ends with assistant", ChatOptions{}, []Message{user("q"), assistant("a")}, "last message (2) must be from the user"},
		{"late system", ChatOptions{}, []Message{user("q"), system("s"), user("q2")}, "message 2: a system message must come first"},
		{"bad role", ChatOptions{}, []Message{{Role: "tool", Content: "x"}, user("q")}, `message 1: unknown role "tool"`},
		{"effort without think", ChatOptions{Effort: EffortBit}, []Message{user("q")}, `"(think a bit)" needs reasoning mode`},
		{"effort with fast think", ChatOptions{Think: ThinkFast, Effort: EffortThink}, []Message{user("q")}, "needs reasoning mode"},
		{"llama inline", ChatOptions{Format: FormatLlamaCpp, Think: ThinkFastInline}, []Message{user("q")}, "no inline fast-think form"},
		{"bad format", ChatOptions{Format: 7}, []Message{user("q")}, "unknown prompt format 7"},
		{"bad think", ChatOptions{Think: -1}, []Message{user("q")}, "unknown think mode -1"},
		{"bad effort", ChatOptions{Think: ThinkOn, Effort: 9}, []Message{user("q")}, "unknown think effort 9"},
	}
	for _, c := range cases {
		got, err := c.o.Prompt(c.msgs)
		if err == nil {
			t.Errorf("%s: no error, prompt %q", c.name, got)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, err, c.want)
		}
	}
}

func TestConversationTurns(t *testing.T) {
	c, err := NewConversation(ChatOptions{}, "Be brief.\n\n")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		user  string
		reply string // what the state consumed of the model's reply
		want  string // the turn text
	}{
		{"q1", " a1\n\n", "System: Be brief.\n\nUser: q1\n\nAssistant:"},
		{"q2\r\n\r\nmore", " a2\n", "User: q2\nmore\n\nAssistant:"},
		{"q3", " cut sho", "\nUser: q3\n\nAssistant:"},     // after " a2\n": one newline missing
		{"q4", " a4 \n\n\n", "\n\nUser: q4\n\nAssistant:"}, // after a reply cut short
		{"q5", "", "User: q5\n\nAssistant:"},               // after "\n\n\n"
	}
	var transcript string
	for i, s := range steps {
		got, err := c.UserTurn(s.user)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Errorf("turn %d: got %q, want %q", i+1, got, s.want)
		}
		c.Fed([]byte(s.reply))
		transcript += s.want + s.reply
	}
	if c.Transcript() != transcript {
		t.Errorf("transcript:\n got %q\nwant %q", c.Transcript(), transcript)
	}
}

func TestConversationMatchesPrompt(t *testing.T) {
	// Without reasoning, feeding the turns and replies one by one gives the
	// same text as the whole prompt of the history.
	c, err := NewConversation(ChatOptions{}, "S")
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := c.UserTurn("q1")
	c.Fed([]byte(" a1\n\n"))
	t2, _ := c.UserTurn("q2")
	want := "System: S\n\nUser: q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant:"
	if t1+" a1\n\n"+t2 != want {
		t.Errorf("incremental %q, want %q", t1+" a1\n\n"+t2, want)
	}
	full, err := ChatOptions{}.Prompt([]Message{system("S"), user("q1"), assistant(" a1"), user("q2")})
	if err != nil || full != want {
		t.Errorf("Prompt = %q, %v; want %q", full, err, want)
	}
}

func TestConversationModes(t *testing.T) {
	// Think mode and effort may change per turn; each turn gets its own suffix.
	c, err := NewConversation(ChatOptions{Think: ThinkOn, Effort: EffortLot}, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.UserTurn("q1")
	if want := "User: q1 (think a lot)\n\nAssistant: <think"; got != want {
		t.Errorf("turn 1: got %q, want %q", got, want)
	}
	c.Fed([]byte(">\nhm\n</think> a1\n\n"))
	c.Options = ChatOptions{Think: ThinkFast}
	got, _ = c.UserTurn("q2")
	if want := "User: q2\n\nAssistant: <think>\n</think"; got != want {
		t.Errorf("turn 2: got %q, want %q", got, want)
	}
	c.Options.Effort = EffortBit
	if _, err := c.UserTurn("q3"); err == nil {
		t.Errorf("effort with fast think: no error")
	}

	ll, err := NewConversation(ChatOptions{Format: FormatLlamaCpp, Think: ThinkOn}, " sys ")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = ll.UserTurn(" q1 ")
	if want := "<s>System:  sys \n\nUser: q1\n\nAssistant: <think>"; got != want {
		t.Errorf("llama.cpp turn 1: got %q, want %q", got, want)
	}
	ll.Fed([]byte("\nhm\n</think>\n\nA.\n\n"))
	got, _ = ll.UserTurn("q2")
	if want := "User: q2\n\nAssistant: <think>"; got != want {
		t.Errorf("llama.cpp turn 2: got %q, want %q", got, want)
	}

	r, err := ResumeConversation(ChatOptions{}, "User: q1\n\nAssistant: a1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = r.UserTurn("q2")
	if want := "\n\nUser: q2\n\nAssistant:"; got != want {
		t.Errorf("resumed: got %q, want %q", got, want)
	}
	if _, err := NewConversation(ChatOptions{Format: 3}, ""); err == nil {
		t.Errorf("NewConversation with a bad format: no error")
	}
}
