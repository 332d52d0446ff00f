//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gguf

import "os"

// mmapFile is not available on this platform: Open reads through the file.
func mmapFile(fh *os.File, size int64) (data []byte, unmap func() error, err error) {
	return nil, nil, nil
}

// evict does nothing where files are not mapped.
func evict(data []byte) {}
