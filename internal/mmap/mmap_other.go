//go:build !unix

package mmap

import (
	"fmt"
	"io"
	"unsafe"

	"github.com/memmamba/memmamba/internal/safeio"
)

// Map reads the regular file at path into a 64-byte-aligned buffer (this
// platform has no mmap in golang.org/x/sys/unix), refusing it before
// reading anything when it is empty or larger than maxSize bytes.
func Map(path string, maxSize int64) ([]byte, func() error, error) {
	fd, err := safeio.Open(path) // regular files only: a FIFO would block the open
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
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
	if size > maxSize || int64(int(size)) != size || int(size) > int(^uint(0)>>1)-Align {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes", path, ErrTooLarge, size)
	}
	buf := make([]byte, int(size)+Align)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(buf))) & (Align - 1))
	data := buf[skip : skip+int(size) : skip+int(size)]
	if _, err := io.ReadFull(fd, data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, func() error { return nil }, nil
}

func dropPages([]byte) {}
