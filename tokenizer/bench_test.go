package tokenizer

import (
	"bytes"
	"testing"
)

// benchText is about 1 MiB of the fixture texts repeated.
func benchText(b *testing.B) []byte {
	var one []byte
	for _, c := range loadCases(b) {
		one = append(one, c.input...)
		one = append(one, '\n')
	}
	return bytes.Repeat(one, 1<<20/len(one)+1)
}

func BenchmarkEncode(b *testing.B) {
	tok := worldTokenizer(b)
	text := benchText(b)
	ids := make([]int, 0, len(text))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		var err error
		if ids, err = tok.AppendEncode(ids[:0], text); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(text))/float64(len(ids)), "bytes/token")
}

func BenchmarkEncodeASCII(b *testing.B) {
	tok := worldTokenizer(b)
	text := bytes.Repeat([]byte("It was the best of times, it was the worst of times; it was the age of wisdom.\n"), 1<<20/80)
	ids := make([]int, 0, len(text))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		ids, _ = tok.AppendEncode(ids[:0], text)
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := worldTokenizer(b)
	text := benchText(b)
	ids, err := tok.Encode(text)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, len(text))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		out, _ = tok.AppendDecode(out[:0], ids)
	}
}

func BenchmarkNew(b *testing.B) {
	v := loadWorld(b)
	for b.Loop() {
		if _, err := New(v.pieces, v.types); err != nil {
			b.Fatal(err)
		}
	}
}
