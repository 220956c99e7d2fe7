//go:build unix

package onnxinit

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the regular file at path read-only, refusing files over
// MaxFileSize before mapping anything.
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
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := st.Size()
	if size > MaxFileSize {
		return nil, nil, fmt.Errorf("%s: %d bytes exceed protobuf's 2 GiB limit (larger models need external data, which is not supported)", path, size)
	}
	if size == 0 {
		return nil, nil, fmt.Errorf("%s: empty file", path)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
