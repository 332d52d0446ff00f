package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gguf"
	"github.com/rwkv-gpu/rwkv-gpu/model"
)

type tokenizeOptions struct {
	model  string
	file   string
	decode string
	json   bool
}

func newTokenizeCmd(g *globalFlags) *cobra.Command {
	o := &tokenizeOptions{}
	cmd := &cobra.Command{
		Use:   "tokenize -m MODEL.gguf [TEXT]",
		Short: "Turn text into token ids with the model's World tokenizer (or ids back into text with --decode)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenize(cmd.OutOrStdout(), o, args)
		},
	}
	cmd.Flags().StringVarP(&o.model, "model", "m", "", "GGUF file whose vocabulary to use")
	cmd.Flags().StringVar(&o.file, "file", "", "read the exact bytes to tokenize from this file")
	cmd.Flags().StringVar(&o.decode, "decode", "", "comma-separated ids to decode into text instead")
	cmd.Flags().BoolVar(&o.json, "json", false, "print a JSON array of ids")
	return cmd
}

func runTokenize(w io.Writer, o *tokenizeOptions, args []string) error {
	if o.model == "" {
		return fmt.Errorf("no model given: pass -m MODEL.gguf")
	}
	f, err := gguf.Open(o.model)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := model.LoadTokenizer(f)
	if err != nil {
		return err
	}
	if o.decode != "" {
		ids, err := parseTokenIDs("--decode", o.decode, tok.VocabSize())
		if err != nil {
			return err
		}
		text, err := tok.Decode(ids)
		if err != nil {
			return err
		}
		_, err = w.Write(text)
		return err
	}
	var text []byte
	switch {
	case o.file != "" && len(args) > 0:
		return fmt.Errorf("give either TEXT or --file, not both")
	case o.file != "":
		if text, err = os.ReadFile(o.file); err != nil {
			return err
		}
	case len(args) == 1:
		text = []byte(args[0])
	default:
		return fmt.Errorf("nothing to tokenize: pass TEXT, --file F or --decode IDS")
	}
	ids, err := tok.Encode(text)
	if err != nil {
		return err
	}
	if o.json {
		if ids == nil {
			ids = []int{}
		}
		return json.NewEncoder(w).Encode(ids)
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	_, err = fmt.Fprintln(w, strings.Join(parts, " "))
	return err
}
