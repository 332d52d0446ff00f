//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gguf

import (
	"os"
	"syscall"
	"unsafe"
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

// pageSize is the granularity of madvise.
var pageSize = uintptr(os.Getpagesize())

// evict tells the kernel that the whole pages inside data (part of a
// mapping made by mmapFile) are not needed soon: their memory is released,
// and a later read maps them in again from the file.
func evict(data []byte) {
	if len(data) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(&data[0]))
	lo := int((pageSize - start%pageSize) % pageSize) // first page boundary inside data
	hi := lo + (len(data)-lo)/int(pageSize)*int(pageSize)
	if lo >= len(data) || hi <= lo {
		return
	}
	// Advice only: an error changes nothing for the caller.
	_ = syscall.Madvise(data[lo:hi], syscall.MADV_DONTNEED)
}
