//go:build unix

package format

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the regular file at path read-only into memory. The mapping
// starts on a page boundary, so the file's 64-byte alignment holds in memory.
func mapFile(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close() // the mapping outlives the descriptor
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
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes do not fit in this process's address space", path, ErrInvalid, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
