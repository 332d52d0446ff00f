package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rwkv-gpu/rwkv-gpu/gpu"
)

// checkInt returns an error naming flag and the accepted range unless
// lo <= v <= hi.
func checkInt(flag string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s %d: expected an integer in [%d, %d]", flag, v, lo, hi)
	}
	return nil
}

// checkTolerance accepts a finite relative tolerance in (0, 1).
func checkTolerance(flag string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 || v >= 1 {
		return fmt.Errorf("%s %g: expected a finite number in (0, 1), e.g. 1e-4", flag, v)
	}
	return nil
}

// listFields splits a comma-, space-, tab- or newline-separated list.
func listFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
}

// parseTokenIDs reads a list of token ids given to flag, each an integer in
// [0, vocab). Errors name the flag, the item's 1-based position and its text.
func parseTokenIDs(flag, s string, vocab int) ([]int, error) {
	fields := listFields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("%s: no token ids given (expected comma-separated integers in [0, %d))", flag, vocab)
	}
	ids := make([]int, len(fields))
	for i, f := range fields {
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 || v >= vocab {
			return nil, fmt.Errorf("%s: item %d %q is not a token id (expected an integer in [0, %d))", flag, i+1, f, vocab)
		}
		ids[i] = v
	}
	return ids, nil
}

// checkAdapterFlag validates --gpu when the user gave it: a negative index
// is an error, and so is one beyond this machine's adapters (listed in the
// message). Without --gpu nothing is enumerated.
func checkAdapterFlag(cmd *cobra.Command, g *globalFlags) error {
	fl := cmd.Flags().Lookup("gpu")
	if fl == nil || !fl.Changed {
		return nil
	}
	if g.adapter < 0 {
		return fmt.Errorf("--gpu %d: expected an adapter index from `rwkv devices` (0 or more; leave --gpu out for the best adapter)", g.adapter)
	}
	adapters, err := gpu.Adapters()
	if err != nil && !errors.Is(err, gpu.ErrNoAdapter) {
		return fmt.Errorf("--gpu %d: listing the adapters: %w", g.adapter, err)
	}
	if len(adapters) == 0 {
		return fmt.Errorf("--gpu %d: %w", g.adapter, gpu.ErrNoAdapter)
	}
	if g.adapter >= len(adapters) {
		names := make([]string, len(adapters))
		for i, a := range adapters {
			names[i] = a.String()
		}
		return fmt.Errorf("--gpu %d: no such adapter; expected an index in [0, %d]: %s", g.adapter, len(adapters)-1, strings.Join(names, "; "))
	}
	return nil
}
