package model

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/rwkv-gpu/rwkv-gpu/internal/outfile"
)

// State is the recurrent state of one sequence (spec/rwkv7.md §4), float32,
// in one flat slice. Per layer l the block at l·LayerStateFloats() holds
//
//	[0, D)        shift_att: ln1 output of the last token
//	[D, 2D)       shift_ffn: ln2 output of the last token
//	[2D, 2D+D·N)  WKV: H matrices of N×N, S_h[i][j] at h·N·N + i·N + j
//	              (i = value row, j = key column), as llama.cpp stores it
//
// The zero value of Data (all zeros) is the state of a fresh sequence.
type State struct {
	Layers   int
	Dim      int
	HeadSize int
	Data     []float32
}

// NewState returns the all-zero state of a fresh sequence.
func NewState(c Config) *State {
	return &State{Layers: c.Layers, Dim: c.Dim, HeadSize: c.HeadSize, Data: make([]float32, c.StateFloats())}
}

func (s *State) layerFloats() int { return 2*s.Dim + s.Dim*s.HeadSize }

// AttShift is layer l's time-mix shift vector: [D].
func (s *State) AttShift(l int) []float32 {
	o := l * s.layerFloats()
	return s.Data[o : o+s.Dim]
}

// FfnShift is layer l's channel-mix shift vector: [D].
func (s *State) FfnShift(l int) []float32 {
	o := l*s.layerFloats() + s.Dim
	return s.Data[o : o+s.Dim]
}

// WKV is layer l's WKV state: [H][N][N].
func (s *State) WKV(l int) []float32 {
	o := l*s.layerFloats() + 2*s.Dim
	return s.Data[o : o+s.Dim*s.HeadSize]
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := *s
	c.Data = append([]float32(nil), s.Data...)
	return &c
}

// Reset zeroes the state (a fresh sequence).
func (s *State) Reset() { clear(s.Data) }

// Compatible reports an error unless o has the same shape as s.
func (s *State) Compatible(o *State) error {
	if o == nil || s.Layers != o.Layers || s.Dim != o.Dim || s.HeadSize != o.HeadSize || len(s.Data) != len(o.Data) {
		var ol, od, on int
		if o != nil {
			ol, od, on = o.Layers, o.Dim, o.HeadSize
		}
		return fmt.Errorf("model: state shape L=%d D=%d N=%d does not match L=%d D=%d N=%d", ol, od, on, s.Layers, s.Dim, s.HeadSize)
	}
	return nil
}

// CopyFrom overwrites s with o, which must have the same shape.
func (s *State) CopyFrom(o *State) error {
	if err := s.Compatible(o); err != nil {
		return err
	}
	copy(s.Data, o.Data)
	return nil
}

// stateMagic starts a state file; stateVersion is its layout version.
const (
	stateMagic   = "RWKV7STATE\x00\x00"
	stateVersion = 1
)

// ErrBadStateFile is wrapped by errors about malformed state files.
var ErrBadStateFile = errors.New("bad state file")

// WriteTo writes the state as: 12-byte magic, uint32 version, uint32 L, D, N,
// then the float32 data, all little-endian.
func (s *State) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	hdr := make([]byte, 0, 28)
	hdr = append(hdr, stateMagic...)
	for _, v := range []uint32{stateVersion, uint32(s.Layers), uint32(s.Dim), uint32(s.HeadSize)} {
		hdr = binary.LittleEndian.AppendUint32(hdr, v)
	}
	n, err := bw.Write(hdr)
	total := int64(n)
	if err != nil {
		return total, err
	}
	buf := make([]byte, 4)
	for _, f := range s.Data {
		binary.LittleEndian.PutUint32(buf, math.Float32bits(f))
		n, err := bw.Write(buf)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, bw.Flush()
}

// ReadState reads a state written by WriteTo; name is used in errors. The
// header's shape must match c.
func ReadState(r io.Reader, name string, c Config) (*State, error) {
	hdr := make([]byte, 28)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("model: %s: reading header: %w (%w)", name, err, ErrBadStateFile)
	}
	if string(hdr[:12]) != stateMagic {
		return nil, fmt.Errorf("model: %s: not a state file (magic %q) (%w)", name, hdr[:12], ErrBadStateFile)
	}
	ver := binary.LittleEndian.Uint32(hdr[12:])
	L, D, N := binary.LittleEndian.Uint32(hdr[16:]), binary.LittleEndian.Uint32(hdr[20:]), binary.LittleEndian.Uint32(hdr[24:])
	if ver != stateVersion {
		return nil, fmt.Errorf("model: %s: state version %d, expected %d (%w)", name, ver, stateVersion, ErrBadStateFile)
	}
	if int(L) != c.Layers || int(D) != c.Dim || int(N) != c.HeadSize {
		return nil, fmt.Errorf("model: %s: state is for L=%d D=%d N=%d, the model has L=%d D=%d N=%d (%w)",
			name, L, D, N, c.Layers, c.Dim, c.HeadSize, ErrBadStateFile)
	}
	s := NewState(c)
	buf := make([]byte, 4*len(s.Data))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("model: %s: reading %d state values: %w (%w)", name, len(s.Data), err, ErrBadStateFile)
	}
	for i := range s.Data {
		s.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return s, nil
}

// SaveState writes s to path atomically (a temporary file renamed into place).
func SaveState(path string, s *State) error {
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := s.WriteTo(w)
		return err
	})
}

// LoadState reads a state file written by SaveState.
func LoadState(path string, c Config) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	return ReadState(bufio.NewReader(f), path, c)
}

// WriteFileAtomic writes path through a temporary file in the same folder
// renamed into place, so a failure never leaves a half-written file; see
// internal/outfile for what it refuses (an input, a folder) and how it
// writes devices and FIFOs in place.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	return outfile.Write(path, write)
}
