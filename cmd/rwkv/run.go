package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/internal/outfile"
	"github.com/rwkv-gpu/rwkv-gpu/model"
	"github.com/rwkv-gpu/rwkv-gpu/rwkv"
)

// maxGenerate bounds -n (a typo guard, far beyond any context people use).
const maxGenerate = 1 << 24

type runOptions struct {
	model    string
	prompt   string
	file     string
	tokens   string
	n        int
	device   string
	stops    []string
	ids      bool
	quiet    bool
	stateIn  string
	stateOut string
	sampling *samplingFlags
}

func newRunCmd(g *globalFlags) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run -m MODEL.gguf (-p TEXT | -f FILE | --tokens IDS | < FILE) [-n 128]",
		Short: "Continue a prompt and stream the generated text (greedy unless sampling flags say otherwise)",
		Long: `Continue a prompt and print only the generated text (or, with --ids, the
generated token ids). The prompt comes from -p, -f, --tokens or standard
input. Generation stops after -n tokens, at token 0 (end of text), or where a
--stop string appears (matched across token boundaries, not printed). A
one-line summary goes to stderr (--quiet drops it).

Decoding is greedy by default, so a run is deterministic; --preset picks
published sampling settings (` + strings.Join(model.PresetNames(), ", ") + `) and the
sampling flags override its fields. --state-in starts from a saved state and
--state-out saves the state after the prompt and the generated tokens.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, o, g)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.model, "model", "m", "", "GGUF model file")
	f.StringVarP(&o.prompt, "prompt", "p", "", "prompt text")
	f.StringVarP(&o.file, "file", "f", "", "read the prompt from this file")
	f.StringVar(&o.tokens, "tokens", "", "the prompt as comma-separated token ids")
	f.IntVarP(&o.n, "max-tokens", "n", 128, "most tokens to generate (0: only feed the prompt, e.g. with --state-out)")
	f.StringVar(&o.device, "device", "auto", "gpu, cpu, or auto (the GPU when there is one)")
	f.StringArrayVar(&o.stops, "stop", nil, `stop where this text appears (repeatable; not printed; \n, \t, \\ and \xHH are read as escapes)`)
	f.BoolVar(&o.ids, "ids", false, "print the generated token ids, comma-separated on one line, instead of the text")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no summary line and no progress bar on stderr")
	f.StringVar(&o.stateIn, "state-in", "", "start from the state saved in this file (by --state-out or chat's /save)")
	f.StringVar(&o.stateOut, "state-out", "", "save the state after the prompt and the generated tokens to this file")
	o.sampling = addSamplingFlags(cmd, "greedy")
	return cmd
}

// promptSource says which of -p, -f, --tokens and stdin gives the prompt.
func (o *runOptions) promptSource(cmd *cobra.Command) (string, error) {
	var given []string
	for _, name := range []string{"prompt", "file", "tokens"} {
		if cmd.Flags().Changed(name) {
			given = append(given, name)
		}
	}
	switch len(given) {
	case 0:
		return "stdin", nil
	case 1:
		return given[0], nil
	}
	return "", fmt.Errorf("the prompt is given by --%s: pass only one of -p, -f and --tokens", strings.Join(given, " and --"))
}

// checkFlags validates what can be checked before the model is loaded.
func (o *runOptions) checkFlags() error {
	if o.model == "" {
		return errNoModel
	}
	if err := checkInt("-n", o.n, 0, maxGenerate); err != nil {
		return err
	}
	if _, err := parseStops(o.stops); err != nil {
		return err
	}
	if _, _, err := o.sampling.sampling(math.MaxInt32); err != nil {
		return err
	}
	if o.stateOut != "" {
		inputs := []string{o.model}
		for _, in := range []string{o.stateIn, o.file} {
			if in != "" {
				inputs = append(inputs, in)
			}
		}
		if err := outfile.Check(o.stateOut, inputs...); err != nil {
			return fmt.Errorf("--state-out: %w", err)
		}
	}
	return nil
}

// parseStops turns the --stop values into stop strings, reading Go's
// backslash escapes (\n, \t, \\, \x41, \u00e9) so that a shell can
// pass a newline; it refuses empty, badly escaped and invalid strings.
func parseStops(stops []string) ([]string, error) {
	var out []string
	for i, s := range stops {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("--stop %q is not valid UTF-8", s)
		}
		var b strings.Builder
		for rest := s; rest != ""; {
			r, multibyte, tail, err := strconv.UnquoteChar(rest, 0)
			if err != nil {
				return nil, fmt.Errorf("--stop %q: bad escape at byte %d (expected \\n, \\t, \\\\, \\xHH or \\uHHHH)", s, len(s)-len(rest))
			}
			if r < utf8.RuneSelf || multibyte {
				b.WriteRune(r)
			} else {
				b.WriteByte(byte(r)) // \xHH is one byte
			}
			rest = tail
		}
		stop := b.String()
		if stop == "" {
			return nil, fmt.Errorf("--stop (number %d) is empty: expected the text that ends generation", i+1)
		}
		if !utf8.ValidString(stop) {
			return nil, fmt.Errorf("--stop %q is not valid UTF-8", s)
		}
		out = append(out, stop)
	}
	return out, nil
}

// readPromptText returns the prompt's text from -p, -f or stdin ("" for
// --tokens, read after the model is loaded).
func (o *runOptions) readPromptText(source string, stdin io.Reader) ([]byte, error) {
	switch source {
	case "prompt":
		return []byte(o.prompt), nil
	case "file":
		b, err := os.ReadFile(o.file)
		if err != nil {
			return nil, fmt.Errorf("-f: %w", err)
		}
		return b, nil
	case "stdin":
		if f, ok := stdin.(*os.File); ok && isTerminal(f) {
			return nil, errors.New("no prompt: pass -p TEXT, -f FILE, --tokens IDS or pipe the text on standard input")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the prompt from standard input: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

func runRun(cmd *cobra.Command, o *runOptions, g *globalFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := o.checkFlags(); err != nil {
		return err
	}
	source, err := o.promptSource(cmd)
	if err != nil {
		return err
	}
	text, err := o.readPromptText(source, cmd.InOrStdin())
	if err != nil {
		return err
	}
	if source != "tokens" && len(text) == 0 {
		return fmt.Errorf("the prompt (from %s) is empty", sourceName(source))
	}

	bar := newLoadBar(stderr, o.quiet)
	start := time.Now()
	m, err := openRWKV(o.model, engineOptions{device: o.device, seqs: 1, progress: bar.progress()}, g, stderr)
	bar.finish()
	if err != nil {
		return err
	}
	defer m.Close()
	loadTime := time.Since(start)

	vocab := m.Config.Vocab
	sampling, _, err := o.sampling.sampling(vocab)
	if err != nil {
		return err
	}
	var ids []int
	if source == "tokens" {
		if ids, err = parseTokenIDs("--tokens", o.tokens, vocab); err != nil {
			return err
		}
		if text, err = m.Tokenizer.Decode(ids); err != nil {
			return fmt.Errorf("--tokens: %w", err)
		}
	} else if ids, err = m.Tokenizer.Encode(text); err != nil {
		return fmt.Errorf("tokenizing the prompt (from %s): %w", sourceName(source), err)
	}

	s, err := m.Engine.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	prior := &generate.GenContext{}
	if o.stateIn != "" {
		if prior, err = loadSessionState(m, s, o.stateIn); err != nil {
			return fmt.Errorf("--state-in: %w", err)
		}
	}

	// Ctrl-C ends the generation (the prompt is still fed whole, and
	// --state-out saves what was generated); a second one kills.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	stops, err := parseStops(o.stops)
	if err != nil {
		return err
	}
	req := generate.Request{Prompt: ids, Session: s, Sampling: samplerFor(sampling), MaxTokens: o.n,
		Stop: generate.StopRules{Strings: stops}, Stream: generate.StreamOptions{RawBytes: true}}
	var wrote []byte // the last bytes written, to end a terminal's line
	if !o.ids {
		req.OnText = func(t string) error {
			if _, err := io.WriteString(stdout, t); err != nil {
				return fmt.Errorf("writing the text: %w", err)
			}
			wrote = []byte(t)
			return nil
		}
	}
	genStart := time.Now()
	res, err := generate.Generate(ctx, m.Engine, m.Tokenizer, req)
	genTime := time.Since(genStart)
	if err != nil {
		return err
	}
	if o.ids {
		fmt.Fprintln(stdout, joinIDs(res.Tokens))
	} else if f, ok := stdout.(*os.File); ok && isTerminal(f) && len(wrote) > 0 && wrote[len(wrote)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if o.stateOut != "" {
		transcript := prior.Transcript + string(text) + string(res.Generated)
		tokens := prior.Tokens + uint64(len(ids)+len(res.Tokens))
		if err := saveSessionState(m, s, o.stateOut, tokens, transcript); err != nil {
			return fmt.Errorf("--state-out: %w", err)
		}
	}
	if !o.quiet {
		fmt.Fprintln(stderr, runSummary(m, loadTime, genTime, res, sampling))
	}
	return nil
}

// sourceName names a prompt source for messages.
func sourceName(source string) string {
	switch source {
	case "prompt":
		return "-p"
	case "file":
		return "-f"
	case "tokens":
		return "--tokens"
	}
	return "standard input"
}

// samplerFor returns the sampler a request needs: nil (the argmax) for
// plain greedy decoding.
func samplerFor(p model.Sampling) *model.Sampling {
	if p.IsGreedy() && p.PresencePenalty == 0 && p.FrequencyPenalty == 0 && len(p.Ban) == 0 {
		return nil
	}
	return &p
}

// joinIDs writes token ids comma-separated.
func joinIDs(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// runSummary is run's line on stderr: load time, prompt and generation
// speeds, why it ended.
func runSummary(m *rwkv.Model, load, total time.Duration, res generate.Result, p model.Sampling) string {
	prompt := res.PromptTime
	if len(res.Tokens) == 0 {
		// A prompt-only run: the prefill is the whole generation.
		prompt = total
	}
	return fmt.Sprintf("%s: loaded in %s; prompt %d tokens, %s; generated %d tokens, %s; %s; finish: %s",
		m.Device(), seconds(load), res.PromptTokens, rate(res.PromptTokens, prompt),
		len(res.Tokens), decodeRate(res), describeSampling(p), finishText(res))
}

// decodeRate is the generation speed: the tokens after the first (which
// ends the prefill) over the time from the first to the last.
func decodeRate(res generate.Result) string {
	return rate(len(res.Tokens)-1, res.DecodeTime)
}

// finishText says why a generation ended, with the stop string.
func finishText(res generate.Result) string {
	switch {
	case res.Finish == generate.FinishStop && res.StopString != "":
		return fmt.Sprintf("%s (%q)", res.Finish, res.StopString)
	case res.Finish == generate.FinishLength && len(res.Tokens) == 0:
		return "prompt only"
	}
	return string(res.Finish)
}

// seconds formats a duration as seconds with two decimals.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// rate formats n tokens in d as tokens per second.
func rate(n int, d time.Duration) string {
	if n <= 0 || d <= 0 {
		return "- t/s"
	}
	return fmt.Sprintf("%.1f t/s", float64(n)/d.Seconds())
}
