package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/internal/outfile"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/rwkv"
)

// chatSession is one chat: a session whose state is kept between turns, the
// conversation that says what each turn feeds, and the count of tokens the
// state has consumed.
type chatSession struct {
	m        *rwkv.Model
	s        model.Session
	conv     *generate.Conversation
	think    generate.Think // the mode of the next turns (/think toggles it)
	system   string
	sampling model.Sampling // its Seed is the base of every reply's seed
	maxReply int
	tokens   uint64 // tokens the state has consumed
	stdout   io.Writer
	stderr   io.Writer
	quiet    bool
}

// newChatSession starts a chat on a fresh session of m.
func newChatSession(m *rwkv.Model, o *chatOptions, p model.Sampling, stdout, stderr io.Writer) (*chatSession, error) {
	s, err := m.Engine.NewSession()
	if err != nil {
		return nil, err
	}
	c := &chatSession{m: m, s: s, system: o.system, sampling: p, maxReply: o.n,
		stdout: stdout, stderr: stderr, quiet: o.quiet}
	if o.think {
		c.think = generate.ThinkOn
	}
	if c.conv, err = generate.NewConversation(c.chatOptions(), o.system); err != nil {
		s.Close()
		return nil, err
	}
	return c, nil
}

// Close frees the session.
func (c *chatSession) Close() error { return c.s.Close() }

func (c *chatSession) chatOptions() generate.ChatOptions {
	return generate.ChatOptions{Format: generate.FormatRWKV, Think: c.think}
}

// turnStats is what the summary line after an answer reports.
type turnStats struct {
	fed     int // new tokens of the turn fed before the answer
	res     generate.Result
	elapsed time.Duration
}

// reply feeds the user's message (only the turn's new tokens) and streams
// the answer to stdout until the blank line that ends it, the token limit,
// or ctx is cancelled (Ctrl-C); the state keeps whatever was generated.
func (c *chatSession) reply(ctx context.Context, text string) (turnStats, error) {
	c.conv.Options = c.chatOptions()
	turn, err := c.conv.UserTurn(text)
	if err != nil {
		return turnStats{}, err
	}
	ids, err := c.m.Tokenizer.Encode([]byte(turn))
	if err != nil {
		return turnStats{}, fmt.Errorf("tokenizing the turn: %w", err)
	}
	// Show the opening of the answer as the model sees it ("Assistant:",
	// or "Assistant: <think" in reasoning mode), then the answer itself.
	opening := turn[strings.LastIndex(turn, "Assistant:"):]
	if _, err := io.WriteString(c.stdout, opening); err != nil {
		return turnStats{}, err
	}
	p := c.sampling
	// Each reply's sampler starts afresh (model.Session.SetSampling); its
	// seed follows the state's length, so a loaded chat continues as the
	// saved one would have.
	p.Seed += c.tokens
	var last string
	req := generate.Request{Prompt: ids, Session: c.s, Sampling: samplerFor(p), MaxTokens: c.maxReply,
		Stop: c.conv.Options.StopRules(),
		OnText: func(t string) error {
			last = t
			_, err := io.WriteString(c.stdout, t)
			return err
		}}
	start := time.Now()
	res, err := generate.Generate(ctx, c.m.Engine, c.m.Tokenizer, req)
	// Whatever was fed is in the state, even on an error after the prompt.
	c.conv.Fed(res.Generated)
	c.tokens += uint64(len(ids) + len(res.Tokens))
	if !strings.HasSuffix(last, "\n") {
		fmt.Fprintln(c.stdout)
	}
	if err != nil {
		return turnStats{}, err
	}
	return turnStats{fed: len(ids), res: res, elapsed: time.Since(start)}, nil
}

// summary is the line after each answer: the new tokens fed, the tokens
// generated, their speeds and why the answer ended.
func (t turnStats) summary() string {
	return fmt.Sprintf("[fed %d new tokens, %s; generated %d tokens, %s; finish: %s]",
		t.fed, rate(t.fed, t.res.PromptTime), len(t.res.Tokens), decodeRate(t.res), finishText(t.res))
}

// chatHelp lists the commands.
const chatHelp = `commands:
  /think        toggle reasoning mode (the answer opens with "Assistant: <think")
  /reset        forget the conversation (the system prompt stays)
  /save FILE    save the state and the transcript to FILE
  /load FILE    continue the chat saved in FILE
  /quit         leave (also Ctrl-D, or Ctrl-C at the prompt)
Ctrl-C during an answer stops the answer.`

// errQuit ends the chat loop.
var errQuit = errors.New("quit")

// command runs a line starting with "/"; errQuit asks to leave. Other
// errors are reported and the chat goes on.
func (c *chatSession) command(line string) error {
	name, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/quit", "/exit":
		return errQuit
	case "/help", "/?":
		fmt.Fprintln(c.stderr, chatHelp)
	case "/think":
		if c.think == generate.ThinkOn {
			c.think = generate.ThinkOff
			fmt.Fprintln(c.stderr, "reasoning mode off")
		} else {
			c.think = generate.ThinkOn
			fmt.Fprintln(c.stderr, `reasoning mode on: answers open with "Assistant: <think"`)
		}
	case "/reset":
		if err := c.s.Reset(); err != nil {
			return err
		}
		conv, err := generate.NewConversation(c.chatOptions(), c.system)
		if err != nil {
			return err
		}
		c.conv, c.tokens = conv, 0
		fmt.Fprintln(c.stderr, "conversation reset")
	case "/save":
		if arg == "" {
			return errors.New("/save: expected a file name: /save FILE")
		}
		if err := outfile.Check(arg, c.m.Path); err != nil {
			return fmt.Errorf("/save: %w", err)
		}
		if err := saveSessionState(c.m, c.s, arg, c.tokens, c.conv.Transcript()); err != nil {
			return fmt.Errorf("/save: %w", err)
		}
		fmt.Fprintf(c.stderr, "saved %s (%d tokens)\n", arg, c.tokens)
	case "/load":
		if arg == "" {
			return errors.New("/load: expected a file name: /load FILE")
		}
		return c.load(arg)
	default:
		return fmt.Errorf("unknown command %s (/help lists them)", name)
	}
	return nil
}

// load continues the chat saved in path: its state and its transcript.
func (c *chatSession) load(path string) error {
	// A refused file leaves the chat as it was.
	gc, err := c.loadState(path)
	if err != nil {
		return fmt.Errorf("/load: %w", err)
	}
	var conv *generate.Conversation
	if gc.TranscriptLen == 0 {
		conv, err = generate.NewConversation(c.chatOptions(), c.system)
	} else {
		conv, err = generate.ResumeConversation(c.chatOptions(), gc.Transcript)
	}
	if err != nil {
		return fmt.Errorf("/load: %w", err)
	}
	c.conv, c.tokens = conv, gc.Tokens
	fmt.Fprintf(c.stderr, "loaded %s (%d tokens)\n", path, gc.Tokens)
	return nil
}

// loadState reads path's state into the session, checking first that it
// belongs to this model and carries the chat's transcript.
func (c *chatSession) loadState(path string) (*generate.GenContext, error) {
	sf, err := generate.LoadStateFile(path, c.m.ID)
	if err != nil {
		return nil, err
	}
	gc := sf.Context
	if gc == nil {
		gc = &generate.GenContext{}
	}
	if gc.TranscriptLen > 0 && gc.Transcript == "" {
		return nil, fmt.Errorf("%s does not carry its transcript (%d bytes kept elsewhere), so the chat cannot continue from it", path, gc.TranscriptLen)
	}
	if err := c.s.SetState(sf.State); err != nil {
		return nil, fmt.Errorf("loading the state of %s: %w", path, err)
	}
	return gc, nil
}
