package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"sync"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"
)

type chatOptions struct {
	model    string
	device   string
	system   string
	n        int
	think    bool
	quiet    bool
	sampling *samplingFlags
}

func newChatCmd(g *globalFlags) *cobra.Command {
	o := &chatOptions{}
	cmd := &cobra.Command{
		Use:   "chat -m MODEL.gguf [--system TEXT]",
		Short: "Chat with a G-series model (line editing, reasoning mode, saved states)",
		Long: `Chat with an RWKV-7 G-series model in its own prompt format
("User: ...\n\nAssistant: ..."). The state is kept between turns, so each
turn feeds only its new tokens (the line after each answer counts them). An
answer ends at the blank line that ends a turn, or after -n tokens.

` + chatHelp + `

Sampling uses the chat preset unless --preset or the sampling flags say
otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChat(cmd, o, g)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.model, "model", "m", "", "GGUF model file (an RWKV-7 G-series chat model)")
	f.StringVar(&o.device, "device", "auto", "gpu, cpu, or auto (the GPU when there is one)")
	f.StringVar(&o.system, "system", "", "system prompt, fed before the first message")
	f.IntVarP(&o.n, "max-tokens", "n", 1024, "most tokens per answer")
	f.BoolVar(&o.think, "think", false, "start in reasoning mode (/think toggles it)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar, greeting or summary lines on stderr")
	o.sampling = addSamplingFlags(cmd, "chat")
	return cmd
}

func runChat(cmd *cobra.Command, o *chatOptions, g *globalFlags) error {
	stdin, stdout, stderr := cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.model == "" {
		return errNoModel
	}
	if err := checkInt("-n", o.n, 1, maxGenerate); err != nil {
		return err
	}
	if _, _, err := o.sampling.sampling(math.MaxInt32); err != nil {
		return err
	}
	bar := newLoadBar(stderr, o.quiet)
	m, err := openRWKV(o.model, engineOptions{device: o.device, seqs: 1, progress: bar.progress()}, g, stderr)
	bar.finish()
	if err != nil {
		return err
	}
	defer m.Close()
	p, _, err := o.sampling.sampling(m.Config.Vocab)
	if err != nil {
		return err
	}
	c, err := newChatSession(m, o, p, stdout, stderr)
	if err != nil {
		return err
	}
	defer c.Close()

	rl, err := newLineReader(stdin, stdout, stderr)
	if err != nil {
		return err
	}
	defer rl.Close()
	if !o.quiet {
		fmt.Fprintf(stderr, "chat with %s on %s, sampling %s; /help lists the commands\n", m.Path, m.Device(), describeSampling(p))
	}

	answers := newInterrupter()
	defer answers.stop()
	for {
		line, err := rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) || errors.Is(err, io.EOF) {
			return nil // Ctrl-C at the prompt, or Ctrl-D / end of input
		}
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "/"):
			err := c.command(line)
			if errors.Is(err, errQuit) {
				return nil
			}
			if err != nil {
				fmt.Fprintln(stderr, "rwkv:", err)
			}
			continue
		}
		ctx, done := answers.start(cmd.Context())
		st, err := c.reply(ctx, line)
		done()
		if err != nil {
			return err
		}
		if !o.quiet {
			fmt.Fprintln(stderr, st.summary())
		}
	}
}

// newLineReader returns a line editor with history over stdin. On a
// terminal it edits lines in raw mode; otherwise it reads lines as they
// come (e.g. piped questions) and leaves the terminal modes alone.
func newLineReader(stdin io.Reader, stdout, stderr io.Writer) (*readline.Instance, error) {
	f, isFile := stdin.(*os.File)
	interactive := isFile && isTerminal(f)
	cfg := &readline.Config{
		Prompt:          "User: ",
		Stdin:           readline.NewCancelableStdin(stdin),
		Stdout:          stdout,
		Stderr:          stderr,
		HistoryLimit:    1000,
		InterruptPrompt: "^C",
		FuncIsTerminal:  func() bool { return interactive },
	}
	if !interactive {
		cfg.FuncMakeRaw = func() error { return nil }
		cfg.FuncExitRaw = func() error { return nil }
	}
	return readline.NewEx(cfg)
}

// interrupter turns Ctrl-C (SIGINT) during an answer into the cancellation
// of that answer's context; between answers it is ignored (at the prompt
// the line editor, in raw mode, sees Ctrl-C itself).
type interrupter struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	sig    chan os.Signal
}

func newInterrupter() *interrupter {
	in := &interrupter{sig: make(chan os.Signal, 1)}
	signal.Notify(in.sig, os.Interrupt)
	go func() {
		for range in.sig {
			in.mu.Lock()
			if in.cancel != nil {
				in.cancel()
			}
			in.mu.Unlock()
		}
	}()
	return in
}

// start returns the context of an answer and the function that ends it.
func (in *interrupter) start(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	in.mu.Lock()
	in.cancel = cancel
	in.mu.Unlock()
	return ctx, func() {
		in.mu.Lock()
		in.cancel = nil
		in.mu.Unlock()
		cancel()
	}
}

// stop restores the default handling of SIGINT.
func (in *interrupter) stop() {
	signal.Stop(in.sig)
	close(in.sig)
}
