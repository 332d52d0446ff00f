package generate

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Role says who wrote a chat message.
type Role string

// The three roles of the chat format.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one chat message.
type Message struct {
	Role    Role
	Content string
}

// Format selects the prompt form.
type Format int

const (
	// FormatRWKV is BlinkDL's G-series form (the default): cleaned
	// messages, no leading <s>, reasoning opened with "<think" and no ">".
	FormatRWKV Format = iota
	// FormatLlamaCpp is llama.cpp's rwkv-world Jinja template: "<s>" first,
	// the last system message untrimmed, messages trimmed but not otherwise
	// cleaned, reasoning opened with " <think>" (with ">"). For A/B
	// comparisons with llama.cpp.
	FormatLlamaCpp
)

// String names the format as a flag would: "rwkv" or "llama.cpp".
func (f Format) String() string {
	switch f {
	case FormatRWKV:
		return "rwkv"
	case FormatLlamaCpp:
		return "llama.cpp"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// Think selects how the assistant's turn is opened.
type Think int

const (
	// ThinkOff opens the reply with "Assistant:" (no reasoning).
	ThinkOff Think = iota
	// ThinkOn opens a reasoning block: "Assistant: <think" (RWKV form, the
	// model writes the ">" itself) or "Assistant: <think>" (llama.cpp form).
	ThinkOn
	// ThinkFast is the empty ("fast") reasoning block: "Assistant:
	// <think>\n</think" (RWKV form) or "Assistant: <think>\n</think>"
	// (llama.cpp's enable_thinking = false).
	ThinkFast
	// ThinkFastInline is the RWKV form's other fast form, "Assistant:
	// <think></think"; llama.cpp has no such form.
	ThinkFastInline
)

// Effort is the think-length control of G1c and newer models: a suffix on
// the last user message. It needs ThinkOn.
type Effort int

const (
	// EffortDefault adds no suffix.
	EffortDefault Effort = iota
	// EffortThink appends " (think)".
	EffortThink
	// EffortBit appends " (think a bit)".
	EffortBit
	// EffortLot appends " (think a lot)".
	EffortLot
)

// suffix is the text appended to the user message.
func (e Effort) suffix() string {
	return [...]string{"", " (think)", " (think a bit)", " (think a lot)"}[e]
}

// ChatOptions selects the prompt form of a chat. The zero value is the RWKV
// form without reasoning.
type ChatOptions struct {
	Format Format
	Think  Think
	Effort Effort
}

// Validate reports an error for a combination the format cannot express.
func (o ChatOptions) Validate() error {
	if o.Format != FormatRWKV && o.Format != FormatLlamaCpp {
		return fmt.Errorf("generate: unknown prompt format %d", int(o.Format))
	}
	if o.Think < ThinkOff || o.Think > ThinkFastInline {
		return fmt.Errorf("generate: unknown think mode %d", int(o.Think))
	}
	if o.Effort < EffortDefault || o.Effort > EffortLot {
		return fmt.Errorf("generate: unknown think effort %d", int(o.Effort))
	}
	if o.Format == FormatLlamaCpp && o.Think == ThinkFastInline {
		return errors.New("generate: llama.cpp's template has no inline fast-think form (<think></think); use the fast form")
	}
	if o.Effort != EffortDefault && o.Think != ThinkOn {
		return fmt.Errorf("generate: the think-length suffix %q needs reasoning mode (think on)", strings.TrimSpace(o.Effort.suffix()))
	}
	return nil
}

// opening is the text that opens the assistant's turn.
func (o ChatOptions) opening() string {
	if o.Format == FormatLlamaCpp {
		return "Assistant:" + [...]string{"", " <think>", " <think>\n</think>", ""}[o.Think]
	}
	return "Assistant:" + [...]string{"", " <think", " <think>\n</think", " <think></think"}[o.Think]
}

// userText is a user message as the format writes it, effort suffix included.
func (o ChatOptions) userText(s string, last bool) string {
	if o.Format == FormatLlamaCpp {
		s = trimSpace(s)
	} else {
		s = CleanMessage(s)
	}
	if last {
		s += o.Effort.suffix()
	}
	return s
}

// assistantText is a previous answer as the format writes it: the text after
// the last "</think>", trimmed (and cleaned in the RWKV form).
func (o ChatOptions) assistantText(s string) string {
	s = StripThink(s)
	if o.Format == FormatLlamaCpp {
		return trimSpace(s)
	}
	return CleanMessage(s)
}

// CleanMessage prepares a System or User text for the RWKV form
// (spec/tokenizer.md §5): "\r\n" becomes "\n", every run of two or more
// newlines becomes one (a blank line would look like a turn boundary), and
// leading and trailing whitespace is removed.
func CleanMessage(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && i > 0 && s[i-1] == '\n' {
			continue
		}
		b.WriteByte(s[i])
	}
	return trimSpace(b.String())
}

// StripThink returns the part of an assistant message after its last
// "</think>" (the whole message when there is none), as previous answers are
// fed back without their reasoning.
func StripThink(s string) string {
	if i := strings.LastIndex(s, "</think>"); i >= 0 {
		return s[i+len("</think>"):]
	}
	return s
}

// trimSpace removes leading and trailing whitespace as Python's str.strip()
// does (BlinkDL's scripts and Jinja's trim filter): Go's unicode.IsSpace plus
// the separators U+001C..U+001F.
func trimSpace(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F)
	})
}

// Prompt assembles the whole prompt of a chat: the messages in order, ending
// with a user message, then the opening of the assistant's reply. In the RWKV
// form a system message may only come first; previous assistant answers lose
// their reasoning. For example, with the zero ChatOptions,
//
//	[system "Be brief.", user "Hi", assistant " Hello!", user "Bye"]
//
// becomes "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser:
// Bye\n\nAssistant:". The model's reply starts with a space.
func (o ChatOptions) Prompt(msgs []Message) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "", errors.New("generate: a chat prompt needs at least one user message")
	}
	lastUser := -1
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem:
			if o.Format == FormatRWKV && i != 0 {
				return "", fmt.Errorf("generate: message %d: a system message must come first", i+1)
			}
		case RoleUser:
			lastUser = i
		case RoleAssistant:
		default:
			return "", fmt.Errorf("generate: message %d: unknown role %q (expected system, user or assistant)", i+1, m.Role)
		}
	}
	if lastUser != len(msgs)-1 {
		return "", fmt.Errorf("generate: the last message (%d) must be from the user, not %s", len(msgs), msgs[len(msgs)-1].Role)
	}
	var b strings.Builder
	if o.Format == FormatLlamaCpp {
		b.WriteString("<s>")
		system := ""
		for _, m := range msgs {
			if m.Role == RoleSystem {
				system = m.Content // the last one wins, untrimmed
			}
		}
		if system != "" {
			b.WriteString("System: " + system + "\n\n")
		}
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem:
			if o.Format == FormatRWKV {
				if s := CleanMessage(m.Content); s != "" {
					b.WriteString("System: " + s + "\n\n")
				}
			}
		case RoleUser:
			b.WriteString("User: " + o.userText(m.Content, i == lastUser) + "\n\n")
		case RoleAssistant:
			b.WriteString("Assistant: " + o.assistantText(m.Content) + "\n\n")
		}
	}
	b.WriteString(o.opening())
	return b.String(), nil
}
