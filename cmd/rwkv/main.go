// Command rwkv runs RWKV-7 GGUF models on the GPU through WebGPU, with a
// pure-Go CPU reference: run, chat, serve, bench, synth, info, tokenize,
// devices and logits.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	verbose bool
	adapter int // WebGPU adapter index, -1 = best (or $RWKV_GPU)
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "rwkv",
		Short:         "RWKV-7 inference on any GPU through WebGPU, with a CPU reference",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return checkAdapterFlag(cmd, g)
		},
	}
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "print progress and device details on stderr")
	root.PersistentFlags().IntVar(&g.adapter, "gpu", -1, "WebGPU adapter index from `rwkv devices` (default: the best one, or $RWKV_GPU)")
	root.AddCommand(
		newInfoCmd(g),
		newTokenizeCmd(g),
		newLogitsCmd(g),
		newRunCmd(g),
		newChatCmd(g),
		newDevicesCmd(g),
		newBenchCmd(g),
		newVerifyCmd(g),
		newSynthCmd(g),
		newServeCmd(g),
		newLoadtestCmd(g),
	)
	return root
}

func main() {
	// Vulkan loaders probe for a Wayland display when the instance is made
	// and print "XDG_RUNTIME_DIR is invalid or not set" on headless machines.
	// rwkv never opens a window: give them a folder so the noise stays away.
	if os.Getenv("XDG_RUNTIME_DIR") == "" {
		os.Setenv("XDG_RUNTIME_DIR", os.TempDir())
	}
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rwkv:", err)
		os.Exit(1)
	}
}
