//go:build !unix

package format

import (
	"fmt"
	"io"
	"os"
	"unsafe"
)

// mapFile reads the file at path into memory: this platform has no mmap in
// golang.org/x/sys/unix. The buffer is placed on a 64-byte boundary, so the
// file's alignment holds in memory as with a mapping.
func mapFile(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w: not a regular file", path, ErrInvalid)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil, fmt.Errorf("%s: %w: empty file", path, ErrNotModel)
	}
	if int64(int(size)) != size || int(size) > int(^uint(0)>>1)-Alignment {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes do not fit in this process's address space", path, ErrInvalid, size)
	}
	buf := make([]byte, int(size)+Alignment)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(buf))) & (Alignment - 1))
	data := buf[skip : skip+int(size) : skip+int(size)]
	if _, err := io.ReadFull(fd, data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, func() error { return nil }, nil
}

// DropPages is a no-op where files are read, not mapped.
func DropPages(b []byte) { dropPages(b) }

func dropPages([]byte) {}
