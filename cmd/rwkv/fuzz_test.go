package main

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// integerText is what a list item must look like to be a number: an
// optional sign and decimal digits (checked here without strconv).
var integerText = regexp.MustCompile(`^[+-]?[0-9]+$`)

// refItems splits like the CLI (commas and whitespace ' ', \t, \n, \r) and
// returns, for each item, its value when it is an integer in [lo, hi], using
// math/big instead of strconv.
func refItems(s string, lo, hi int64) (items []string, vals []int64, firstBad int) {
	firstBad = -1
	items = strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(", \t\n\r", r) })
	for i, it := range items {
		v, ok := new(big.Int).SetString(strings.TrimPrefix(it, "+"), 10)
		if !integerText.MatchString(it) || !ok || !v.IsInt64() || v.Int64() < lo || v.Int64() > hi {
			if firstBad < 0 {
				firstBad = i
			}
			vals = append(vals, 0)
			continue
		}
		vals = append(vals, v.Int64())
	}
	return items, vals, firstBad
}

// FuzzParseTokenIDs: the --tokens/--decode parser never panics, accepts
// exactly the lists whose items are all integers in [0, vocab), and on
// failure names the first bad item by 1-based position and text.
func FuzzParseTokenIDs(f *testing.F) {
	for _, s := range []string{"0,795,156", "-1", "1, 2\t3\n4", "", " , ", "+5", "007", "1,x", "99999999999999999999",
		"65535,65536", "1e3", "0x10", "１", "-0", "1,,2", "\u00a01"} {
		f.Add(s, uint32(65536))
	}
	f.Add("3", uint32(1))
	f.Fuzz(func(t *testing.T, s string, vocab uint32) {
		v := int(vocab%70000) + 1
		ids, err := parseTokenIDs("--tokens", s, v)
		items, want, firstBad := refItems(s, 0, int64(v-1))
		switch {
		case len(items) == 0:
			if err == nil || !strings.HasPrefix(err.Error(), "--tokens: no token ids given") {
				t.Fatalf("%q: no items, got %v, %v", s, ids, err)
			}
		case firstBad >= 0:
			wantMsg := fmt.Sprintf("--tokens: item %d %q is not a token id (expected an integer in [0, %d))", firstBad+1, items[firstBad], v)
			if err == nil || err.Error() != wantMsg {
				t.Fatalf("%q (vocab %d): got %v, %v; want error %s", s, v, ids, err, wantMsg)
			}
		default:
			if err != nil || len(ids) != len(want) {
				t.Fatalf("%q (vocab %d): got %v, %v; want %v", s, v, ids, err, want)
			}
			for i := range ids {
				if int64(ids[i]) != want[i] {
					t.Fatalf("%q: item %d = %d, want %d", s, i+1, ids[i], want[i])
				}
			}
		}
	})
}

// FuzzParseBatches: the bench -b parser, the same way, for [1, 64].
func FuzzParseBatches(f *testing.F) {
	for _, s := range []string{"1", "1,8", "0", "65", "1,x", ",", "", " 2 , 4 ", "+3", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseBatches(s)
		items, want, firstBad := refItems(s, 1, maxBenchBatch)
		switch {
		case len(items) == 0:
			if err == nil || !strings.Contains(err.Error(), "expected comma-separated sequence counts") {
				t.Fatalf("%q: got %v, %v", s, got, err)
			}
		case firstBad >= 0:
			wantMsg := fmt.Sprintf("-b/--batch: item %d %q is not a sequence count (expected an integer in [1, %d])", firstBad+1, items[firstBad], maxBenchBatch)
			if err == nil || err.Error() != wantMsg {
				t.Fatalf("%q: got %v, %v; want error %s", s, got, err, wantMsg)
			}
		default:
			if err != nil || len(got) != len(want) {
				t.Fatalf("%q: got %v, %v; want %v", s, got, err, want)
			}
			for i := range got {
				if int64(got[i]) != want[i] {
					t.Fatalf("%q: item %d = %d, want %d", s, i+1, got[i], want[i])
				}
			}
		}
	})
}
