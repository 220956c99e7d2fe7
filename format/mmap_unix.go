//go:build unix

package format

import (
	"fmt"
	"os"

	"unsafe"

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

// DropPages tells the kernel that this process is done, for now, with the
// mapped pages wholly inside b (a tensor's Data), so that they leave its
// resident set; they stay in the page cache, and reading b again brings them
// back. Verify calls it after each tensor, so checking a file does not grow
// the resident set to the file's size; the ONNX Runtime backend calls it
// after re-laying a tensor out. Where files are not mapped it does nothing.
func DropPages(b []byte) { dropPages(b) }

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
