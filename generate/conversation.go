package generate

import "strings"

// Conversation builds the text of each new turn of a chat whose recurrent
// state is kept between turns, so that every turn feeds only its new tokens.
// It records everything the state has consumed (the transcript): the turns
// it returned and the replies the caller reports with Fed.
//
// Its first turn equals Prompt of [system, user]; after a reply that ended
// with "\n\n" (the end-of-turn rule with the blank line fed to the state) the
// next turn is "User: {q}\n\nAssistant:", and after a reply cut short the
// missing blank line is fed first. Unlike Prompt, the state keeps previous
// reasoning blocks and think-length suffixes, as BlinkDL's chat demos do.
type Conversation struct {
	// Options may change between turns (e.g. the think mode); the format
	// should stay the same.
	Options ChatOptions

	system string
	fed    strings.Builder
}

// NewConversation starts a chat from a fresh state. system may be empty.
func NewConversation(o ChatOptions, system string) (*Conversation, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Conversation{Options: o, system: system}, nil
}

// ResumeConversation continues a chat whose state has consumed transcript
// (from Transcript, e.g. saved with the state); only its end matters.
func ResumeConversation(o ChatOptions, transcript string) (*Conversation, error) {
	c, err := NewConversation(o, "")
	if err != nil {
		return nil, err
	}
	c.fed.WriteString(transcript)
	return c, nil
}

// UserTurn returns the text to feed for the user's next message and records
// it as fed: on the first turn the "<s>" (llama.cpp form) and system prompt,
// on later turns whatever is missing of the blank line that ends the previous
// reply, then "User: {text}\n\n" and the opening of the assistant's reply.
func (c *Conversation) UserTurn(text string) (string, error) {
	o := c.Options
	if err := o.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	if c.fed.Len() == 0 {
		if o.Format == FormatLlamaCpp {
			b.WriteString("<s>")
			if c.system != "" {
				b.WriteString("System: " + c.system + "\n\n")
			}
		} else if s := CleanMessage(c.system); s != "" {
			b.WriteString("System: " + s + "\n\n")
		}
	} else {
		b.WriteString(turnSeparator(c.fed.String()))
	}
	b.WriteString("User: " + o.userText(text, true) + "\n\n" + o.opening())
	turn := b.String()
	c.fed.WriteString(turn)
	return turn, nil
}

// turnSeparator is what must follow fed for a new turn to start after a
// blank line.
func turnSeparator(fed string) string {
	switch {
	case strings.HasSuffix(fed, "\n\n"):
		return ""
	case strings.HasSuffix(fed, "\n"):
		return "\n"
	}
	return "\n\n"
}

// Fed records text the state consumed outside UserTurn: the reply as
// generated, i.e. the decoded tokens that were fed back (Streamer.Generated),
// stop string included when its token was fed.
func (c *Conversation) Fed(text []byte) { c.fed.Write(text) }

// Transcript returns everything the state has consumed, in order.
func (c *Conversation) Transcript() string { return c.fed.String() }
