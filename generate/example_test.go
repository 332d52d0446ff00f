package generate_test

import (
	"fmt"

	"github.com/rwkv-gpu/rwkv-gpu/generate"
	"github.com/rwkv-gpu/rwkv-gpu/tokenizer"
)

// A chat turn with a kept state: feed the turn, stream the reply, record
// what the state consumed. The "model" here replays fixed tokens.
func Example() {
	pieces := [][]byte{[]byte("<s>"), []byte(" Bonjour"), []byte(" \xe2\x82"), []byte("\xac!"), []byte("\n\n")}
	tok, _ := tokenizer.New(pieces, []tokenizer.TokenType{tokenizer.TypeControl, 1, 1, 1, 1})

	opts := generate.ChatOptions{}
	conv, _ := generate.NewConversation(opts, "")
	turn, _ := conv.UserTurn("Say hello in French.")
	fmt.Printf("feed %q\n", turn) // encode and feed it to the session

	s, _ := generate.NewStreamer(tok, opts.StopRules(), generate.StreamOptions{TrimLeadingSpace: true})
	for _, id := range []int{1, 2, 3, 4} { // sampled one by one; each is fed back
		text, done, _ := s.Add(id)
		fmt.Printf("show %q\n", text)
		if done {
			break
		}
	}
	fmt.Printf("reply %q, reason %s\n", s.Text(), s.Reason())
	conv.Fed(s.Generated())
	next, _ := conv.UserTurn("Merci")
	fmt.Printf("feed %q\n", next)
	// Output:
	// feed "User: Say hello in French.\n\nAssistant:"
	// show "Bonjour"
	// show " "
	// show "€!"
	// show ""
	// reply "Bonjour €!", reason stop
	// feed "User: Merci\n\nAssistant:"
}
