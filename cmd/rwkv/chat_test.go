package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/internal/fixtures"
	"github.com/rwkv-gpu/rwkv-gpu/internal/numtest"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// cliChildEnv makes the test binary run the CLI with its arguments instead
// of the tests, so that a test can start it on a pseudo-terminal.
const cliChildEnv = "RWKV_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliChildEnv) == "1" {
		if os.Getenv("XDG_RUNTIME_DIR") == "" { // as main does
			os.Setenv("XDG_RUNTIME_DIR", os.TempDir())
		}
		cmd := newRootCmd()
		cmd.SetArgs(os.Args[1:])
		if err := cmd.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "rwkv:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// ptyCLI is the CLI running on a pseudo-terminal, as a person runs it.
type ptyCLI struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer // everything the terminal showed
	seen int          // how much of out expect has consumed
	eof  chan struct{}
}

// startCLI runs rwkv args on a new pseudo-terminal (stdin, stdout and
// stderr), wide enough that the line editor never wraps.
func startCLI(t *testing.T, args ...string) *ptyCLI {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), cliChildEnv+"=1")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 400})
	require.NoError(t, err)
	c := &ptyCLI{t: t, cmd: cmd, tty: tty, eof: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				close(c.eof)
				return
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		tty.Close()
	})
	return c
}

// expect waits until the output not yet consumed matches re, consumes it
// up to the end of the match and returns the submatches.
func (c *ptyCLI) expect(re string) []string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.mu.Lock()
		rest := c.out.String()[c.seen:]
		if loc := rx.FindStringSubmatchIndex(rest); loc != nil {
			var subs []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] >= 0 {
					subs = append(subs, rest[loc[i]:loc[i+1]])
				} else {
					subs = append(subs, "")
				}
			}
			c.seen += loc[1]
			c.mu.Unlock()
			return subs
		}
		c.mu.Unlock()
		select {
		case <-c.eof:
			c.mu.Lock()
			rest = c.out.String()[c.seen:]
			c.mu.Unlock()
			if rx.MatchString(rest) {
				continue
			}
			c.t.Fatalf("the program ended without showing %q; it showed after the last match:\n%q", re, rest)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %q; the terminal shows after the last match:\n%q", re, rest)
		}
	}
}

// send types s.
func (c *ptyCLI) send(s string) {
	c.t.Helper()
	_, err := c.tty.Write([]byte(s))
	require.NoError(c.t, err)
}

// wait waits for the program to exit and requires exit status 0.
func (c *ptyCLI) wait() {
	c.t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		<-c.eof
		c.mu.Lock()
		out := c.out.String()[c.seen:]
		c.mu.Unlock()
		require.NoError(c.t, err, "exit status; the terminal shows after the last match:\n%q", out)
	case <-time.After(60 * time.Second):
		c.t.Fatal("the program did not exit")
	}
}

// summaryRE matches the line after an answer: fed, generated, finish.
const summaryRE = `\[fed (\d+) new tokens, [^;]+; generated (\d+) tokens, [^;]+; finish: (\w+)[^\]]*\]`

// answer waits for an answer's opening and its summary line and returns
// the new tokens fed, the tokens generated and the finish reason.
func (c *ptyCLI) answer(opening string) (fed, generated int, finish string) {
	c.t.Helper()
	c.expect(regexp.QuoteMeta(opening))
	m := c.expect(summaryRE)
	fed, _ = strconv.Atoi(m[1])
	generated, _ = strconv.Atoi(m[2])
	return fed, generated, m[3]
}

// atoi parses a number the program printed.
func atoi(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err)
	return n
}

// TestChatThroughPTY drives rwkv chat on a pseudo-terminal: two turns, the
// second in reasoning mode (/think), /save, a third turn and /save again,
// /quit. A second chat /loads the first save, asks the third question in
// the same mode, and saves: both saves hold the same state and transcript,
// so the loaded chat continued exactly as the uninterrupted one (greedy).
// The summary lines count the new tokens of each turn as the G-series
// format writes it (hand-written here), and the transcript saved is that
// format.
func TestChatThroughPTY(t *testing.T) {
	path := fixtures.Path(t, "tiny", "rwkv7-tiny-F16.gguf")
	tok, err := model.LoadTokenizer(numtest.LoadFixture(t, "F16").File)
	require.NoError(t, err)
	dir := t.TempDir()
	saved, after := filepath.Join(dir, "two turns.state"), filepath.Join(dir, "three turns.state")
	args := []string{"chat", "-m", path, "--device", "cpu", "-n", "8", "--temperature", "0"}

	a := startCLI(t, args...)
	a.expect(`sampling greedy; /help lists the commands`)
	a.expect(`User: `)
	a.send("hello\r")
	fed1, gen1, finish := a.answer("Assistant:")
	require.Equal(t, len(encode(t, tok, "User: hello\n\nAssistant:")), fed1, "the first turn")
	require.Equal(t, 8, gen1)
	require.Equal(t, "length", finish)
	a.expect(`User: `)
	a.send("/think\r")
	a.expect(`reasoning mode on`)
	a.send("why\r")
	fed2, gen2, finish := a.answer("Assistant: <think")
	require.Equal(t, "length", finish)
	a.send("/save " + saved + "\r")
	m := a.expect(`saved .*two turns\.state \((\d+) tokens\)`)
	require.Equal(t, uint64(fed1+gen1+fed2+gen2), atoi(t, m[1]))
	a.send("more\r")
	fed3, gen3, _ := a.answer("Assistant: <think")
	a.send("/save " + after + "\r")
	a.expect(`saved .*three turns\.state`)
	a.send("/quit\r")
	a.wait()

	// Rebuild the first save with rwkv run from hand-written turns: the
	// first turn, the reply (8 greedy tokens with the chat preset's
	// penalties), the blank line the cut-short reply lacks, the second
	// turn opening a reasoning block, its reply. Fed as one prompt, the
	// tokens give the chat's state and transcript exactly.
	ids1 := encode(t, tok, "User: hello\n\nAssistant:")
	g1 := runIDs(t, path, ids1, 8)
	text1, err := tok.Decode(g1)
	require.NoError(t, err)
	turn2 := turnSeparatorFor(string(text1)) + "User: why\n\nAssistant: <think"
	ids2 := encode(t, tok, turn2)
	require.Equal(t, len(ids2), fed2, "the second turn feeds only its new tokens: %q", turn2)
	rebuilt := filepath.Join(dir, "rebuilt.state")
	prompt := append(append(append([]int(nil), ids1...), g1...), ids2...)
	_, _, err = run(t, "run", "--device", "cpu", "-m", path, "--tokens", idList(prompt), "-n", "8",
		"--preset", "chat", "--temperature", "0", "--state-out", rebuilt, "-q")
	require.NoError(t, err)
	id := modelID(t, "F16")
	sf, err := generate.LoadStateFile(saved, id)
	require.NoError(t, err)
	want, err := generate.LoadStateFile(rebuilt, id)
	require.NoError(t, err)
	require.Equal(t, want.Context.Transcript, sf.Context.Transcript)
	require.True(t, strings.HasPrefix(sf.Context.Transcript, "User: hello\n\nAssistant:"+string(text1)+turn2))
	require.Equal(t, want.Context.Tokens, sf.Context.Tokens)
	requireSameState(t, want.State.Data, sf.State.Data, "the chat's state after two turns vs the turns fed as one prompt")

	b := startCLI(t, args...)
	b.expect(`User: `)
	b.send("/load " + saved + "\r")
	m = b.expect(`loaded .*two turns\.state \((\d+) tokens\)`)
	require.Equal(t, sf.Context.Tokens, atoi(t, m[1]))
	b.send("/think\r")
	b.expect(`reasoning mode on`)
	b.send("more\r")
	fedB, genB, _ := b.answer("Assistant: <think")
	require.Equal(t, fed3, fedB)
	require.Equal(t, gen3, genB)
	resumed := filepath.Join(dir, "resumed.state")
	b.send("/save " + resumed + "\r")
	b.expect(`saved .*resumed\.state`)
	// Ctrl-C at the prompt quits. Wait for the prompt: until the line
	// editor has it, the terminal is in cooked mode and turns Ctrl-C into
	// SIGINT, which between answers is ignored.
	b.expect(`User: `)
	b.send("\x03")
	b.wait()

	want, err = generate.LoadStateFile(after, id)
	require.NoError(t, err)
	got, err := generate.LoadStateFile(resumed, id)
	require.NoError(t, err)
	require.Equal(t, want.Context.Transcript, got.Context.Transcript, "the loaded chat's third turn and reply")
	require.Equal(t, want.Context.Tokens, got.Context.Tokens)
	requireSameState(t, want.State.Data, got.State.Data, "the state after the third turn, loaded vs uninterrupted")
}

// turnSeparatorFor is what a new turn must add after a reply for the
// reply to end with a blank line (G-series format).
func turnSeparatorFor(reply string) string {
	switch {
	case strings.HasSuffix(reply, "\n\n"):
		return ""
	case strings.HasSuffix(reply, "\n"):
		return "\n"
	}
	return "\n\n"
}

// encode tokenizes text.
func encode(t *testing.T, tok interface {
	Encode([]byte) ([]int, error)
}, text string) []int {
	t.Helper()
	ids, err := tok.Encode([]byte(text))
	require.NoError(t, err)
	return ids
}

// runIDs is rwkv run --ids of ids on the CPU, greedy with the chat
// preset's penalties (what chat --temperature 0 samples with).
func runIDs(t *testing.T, path string, ids []int, n int) []int {
	t.Helper()
	out, _, err := run(t, "run", "--device", "cpu", "-m", path, "--tokens", idList(ids), "-n", strconv.Itoa(n),
		"--preset", "chat", "--temperature", "0", "--ids", "-q")
	require.NoError(t, err)
	return parseIDs(t, out)
}

// requireSameState fails at the first differing element, naming both.
func requireSameState(t *testing.T, want, got []float32, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("%s: first mismatch at element %d of %d: want %v, got %v", what, i, len(want), want[i], got[i])
		}
	}
}

// TestChatCtrlCStopsTheAnswer: Ctrl-C during an answer ends it (finish
// cancelled) and the chat goes on; the state kept is exactly that of the
// turn and the tokens generated, as `rwkv run` of the same tokens saves it;
// Ctrl-D at the prompt quits.
func TestChatCtrlCStopsTheAnswer(t *testing.T) {
	path := fixtures.Path(t, "tiny", "rwkv7-tiny-F16.gguf")
	dir := t.TempDir()
	chatState := filepath.Join(dir, "chat.state")
	// Greedy with the chat preset's penalties, this model answers "hello"
	// with 2307 tokens before a blank line: Ctrl-C comes long before.
	c := startCLI(t, "chat", "-m", path, "--device", "cpu", "-n", "100000", "--temperature", "0")
	c.expect(`User: `)
	c.send("hello\r")
	c.expect(`(?s)Assistant:.{8}`) // the answer is streaming
	c.send("\x03")
	m := c.expect(summaryRE)
	require.Equal(t, "cancelled", m[3])
	generated := m[2]
	require.NotEqual(t, "0", generated)
	c.expect(`User: `)
	c.send("/save " + chatState + "\r")
	c.expect(`saved`)
	c.send("\x04") // Ctrl-D quits
	c.wait()

	tok, err := model.LoadTokenizer(numtest.LoadFixture(t, "F16").File)
	require.NoError(t, err)
	ids, err := tok.Encode([]byte("User: hello\n\nAssistant:"))
	require.NoError(t, err)
	runState := filepath.Join(dir, "run.state")
	_, _, err = run(t, "run", "--device", "cpu", "-m", path, "--tokens", idList(ids), "-n", generated,
		"--preset", "chat", "--temperature", "0", "--state-out", runState, "-q")
	require.NoError(t, err)
	id := modelID(t, "F16")
	want, err := generate.LoadStateFile(runState, id)
	require.NoError(t, err)
	got, err := generate.LoadStateFile(chatState, id)
	require.NoError(t, err)
	require.Equal(t, want.Context.Tokens, got.Context.Tokens)
	require.Equal(t, want.Context.Transcript, got.Context.Transcript)
	requireSameState(t, want.State.Data, got.State.Data, "the state of a cancelled answer")
}

// TestChatPiped: questions piped on standard input get their answers on
// stdout (no prompts, no terminal control), summaries on stderr; a bad
// command is reported and the chat goes on; end of input quits.
func TestChatPiped(t *testing.T) {
	path := fixtures.Path(t, "tiny", "rwkv7-tiny-F16.gguf")
	dir := t.TempDir()
	in := "hello\n/nonsense\n/save\n/load " + filepath.Join(dir, "missing.state") + "\nbye\n"
	out, stderr, err := runIn(t, strings.NewReader(in), "chat", "-m", path, "--device", "cpu", "-n", "5", "--temperature", "0")
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(out, "Assistant:"), out)
	require.NotContains(t, out, "User: ")
	require.NotContains(t, out, "\x1b", "no terminal control on a pipe")
	require.Equal(t, 2, len(regexp.MustCompile(summaryRE).FindAllString(stderr, -1)), stderr)
	require.Contains(t, stderr, "unknown command /nonsense (/help lists them)")
	require.Contains(t, stderr, "/save: expected a file name")
	require.Contains(t, stderr, "missing.state")

	_, _, err = runIn(t, strings.NewReader(""), "chat", "-m", path, "--device", "cpu", "--top-p", "2")
	require.ErrorContains(t, err, "--top-p 2: expected a number in [0, 1]")
	_, _, err = runIn(t, strings.NewReader(""), "chat", "-m", path, "--device", "cpu", "-n", "0")
	require.ErrorContains(t, err, "-n 0: expected an integer in [1, ")
}

// TestLoadingBarOnlyOnATerminal: loading a model on the GPU draws a
// progress bar on a terminal's stderr, and none with --quiet (the other run
// tests show none when stderr is not a terminal: their stderr is exactly
// the summary line).
func TestLoadingBarOnlyOnATerminal(t *testing.T) {
	needDevice(t, "gpu")
	path := fixtures.Path(t, "tiny", "rwkv7-tiny-Q8_0.gguf")
	c := startCLI(t, "run", "--device", "gpu", "-m", path, "-p", "Hi", "-n", "2")
	c.expect(`loading +\d+% \|.*\(.*B/.*MB`)
	c.expect(`generated 2 tokens`)
	c.wait()

	q := startCLI(t, "run", "--device", "gpu", "-m", path, "-p", "Hi", "-n", "2", "--quiet")
	q.wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	require.NotContains(t, q.out.String(), "loading")
	require.NotContains(t, q.out.String(), "generated")
}

// TestRunWithoutPromptOnATerminal: run with no prompt flag and a terminal
// for stdin says how to give one instead of waiting for input.
func TestRunWithoutPromptOnATerminal(t *testing.T) {
	path := fixtures.Path(t, "tiny", "rwkv7-tiny-F16.gguf")
	c := startCLI(t, "run", "--device", "cpu", "-m", path)
	c.expect(`no prompt: pass -p TEXT, -f FILE, --tokens IDS or pipe the text on standard input`)
	err := c.cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
}
