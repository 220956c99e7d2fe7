//go:build unix

package mmap

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/memmamba/memmamba/internal/safeio"

	"golang.org/x/sys/unix"
)

// Map maps the regular file at path read-only, refusing it before mapping
// anything when it is empty or larger than maxSize bytes.
func Map(path string, maxSize int64) ([]byte, func() error, error) {
	fd, err := safeio.Open(path) // regular files only: a FIFO would block the open
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil, fmt.Errorf("%s: %w", path, ErrEmpty)
	}
	if size > maxSize || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes", path, ErrTooLarge, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}

func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	ps := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&b[0]))
	lo := (start + ps - 1) &^ (ps - 1)
	hi := (start + uintptr(len(b))) &^ (ps - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_DONTNEED)
}
