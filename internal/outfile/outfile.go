// Package outfile writes the output files of rwkv's commands (logits, synth,
// the synthetic-model cache) so that a failure or an interrupt never leaves a
// half-written file, and an output never overwrites an input:
//
//   - an output that is the same file as an input (same device and inode:
//     the same path, a hard link or a symlink) is refused, naming both;
//   - a regular file is written to a hidden temporary file in the same
//     folder and renamed into place (through a symlink, onto its target);
//   - a target that exists and is not a regular file (/dev/null, /dev/full,
//     a FIFO) is written in place, never replaced;
//   - error messages name the user's path and the cause (missing folder,
//     target is a folder, permission, disk full), never the temporary file;
//   - the temporary file is removed on every error, and on SIGINT or SIGTERM
//     while it exists.
package outfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes path with write, which receives a buffered writer. inputs are
// the files the command reads; path must not be one of them. See the package
// comment for what happens on each kind of target.
func Write(path string, write func(io.Writer) error, inputs ...string) error {
	t, err := resolve(path, inputs)
	if err != nil {
		return err
	}
	if t.special {
		return writeInPlace(path, write)
	}
	return writeReplace(path, t, write)
}

// Check reports the errors Write would report before writing anything: an
// output that is an input, a missing folder, a folder as the target. Commands
// call it before long work so that a bad -o fails at once.
func Check(path string, inputs ...string) error {
	_, err := resolve(path, inputs)
	return err
}

// target is what resolve found at an output path.
type target struct {
	special bool        // exists and is not a regular file: write in place
	real    string      // the path to rename onto (symlinks followed)
	mode    fs.FileMode // permissions of the file replaced, 0644 for a new one
}

// resolve checks path against the inputs and classifies it.
func resolve(path string, inputs []string) (target, error) {
	if path == "" {
		return target{}, errors.New("no output file given")
	}
	st, err := os.Stat(path)
	switch {
	case err == nil:
		for _, in := range inputs {
			if ist, ierr := os.Stat(in); ierr == nil && os.SameFile(st, ist) {
				return target{}, fmt.Errorf("output %s is the same file as the input %s: refusing to overwrite an input", path, in)
			}
		}
		if st.IsDir() {
			return target{}, fmt.Errorf("output %s is a folder: give a file name, e.g. %s", path, filepath.Join(path, "out"))
		}
		if !st.Mode().IsRegular() {
			return target{special: true}, nil
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return target{}, fmt.Errorf("output %s: %w", path, cause(err))
		}
		return target{real: real, mode: st.Mode().Perm()}, nil
	case errors.Is(err, fs.ErrNotExist):
		// A dangling symlink is replaced by the file, like a missing path.
		dir := filepath.Dir(path)
		dst, derr := os.Stat(dir)
		switch {
		case errors.Is(derr, fs.ErrNotExist):
			return target{}, fmt.Errorf("output %s: the folder %s does not exist", path, dir)
		case derr != nil:
			return target{}, fmt.Errorf("output %s: folder %s: %w", path, dir, cause(derr))
		case !dst.IsDir():
			return target{}, fmt.Errorf("output %s: %s is not a folder", path, dir)
		}
		return target{real: path, mode: 0o644}, nil
	default:
		// ENOTDIR (a file used as a folder), EACCES on a folder on the way...
		return target{}, fmt.Errorf("output %s: %w", path, cause(err))
	}
}

// writeInPlace writes an existing non-regular file (a device, a FIFO)
// directly: renaming over it would replace /dev/null with a regular file.
func writeInPlace(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("output %s: %w", path, cause(err))
	}
	bw := bufio.NewWriterSize(namedWriter{f}, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cause(cerr)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeReplace writes a hidden temporary file beside t.real and renames it
// onto t.real once complete.
func writeReplace(path string, t target, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(t.real)
	if dir == "" {
		dir = "."
	}
	tmp, err := createTemp(dir, base)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("output %s: no permission to create a file in the folder %s", path, dir)
		}
		return fmt.Errorf("output %s: creating a file in the folder %s: %w", path, dir, cause(err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			discard(tmp.Name())
		}
	}()
	if err := tmp.Chmod(t.mode); err != nil {
		return fmt.Errorf("output %s: %w", path, cause(err))
	}
	bw := bufio.NewWriterSize(namedWriter{tmp}, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, cause(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, cause(err))
	}
	if err := os.Rename(tmp.Name(), t.real); err != nil {
		return fmt.Errorf("writing %s: %w", path, cause(err))
	}
	untrack(tmp.Name())
	return nil
}

// createTemp creates the hidden temporary file for base in dir and tracks it
// for removal on a signal.
func createTemp(dir, base string) (*os.File, error) {
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	track(tmp.Name())
	return tmp, nil
}

// discard removes a temporary file and stops tracking it.
func discard(name string) {
	os.Remove(name)
	untrack(name)
}

// namedWriter passes writes to a file and strips the file's (temporary)
// name from its errors, leaving the cause (ENOSPC, EIO...), which the caller
// reports with the user's path.
type namedWriter struct{ f *os.File }

func (w namedWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, cause(err)
}

// cause strips the path of an *fs.PathError or *os.LinkError, keeping the
// underlying error (errors.Is still sees syscall errors through it).
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
