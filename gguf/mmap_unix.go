//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gguf

import (
	"os"
	"syscall"
)

// mmapFile maps the whole file read-only. It returns a nil slice (and no
// error) when the file cannot be mapped (empty, or larger than the address
// space), so that the caller falls back to reading.
func mmapFile(fh *os.File, size int64) (data []byte, unmap func() error, err error) {
	if size <= 0 || size > int64(maxInt) {
		return nil, nil, nil
	}
	data, err = syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
