package format

import (
	"errors"
	"fmt"
	"math"

	"github.com/memmamba/memmamba/internal/mmap"
)

// mapFile maps the model file at path read-only (internal/mmap), so the
// file's 64-byte alignment holds in memory.
func mapFile(path string) ([]byte, func() error, error) {
	data, unmap, err := mmap.Map(path, math.MaxInt64)
	switch {
	case errors.Is(err, mmap.ErrEmpty):
		return nil, nil, fmt.Errorf("%s: %w: empty file", path, ErrNotModel)
	case errors.Is(err, mmap.ErrNotRegular):
		return nil, nil, fmt.Errorf("%s: %w: not a regular file", path, ErrInvalid)
	case errors.Is(err, mmap.ErrTooLarge):
		return nil, nil, fmt.Errorf("%w: %w: the file does not fit in this process's address space", err, ErrInvalid)
	}
	return data, unmap, err
}

// DropPages tells the kernel that this process is done, for now, with the
// mapped pages wholly inside b (a tensor's Data), so that they leave its
// resident set; they stay in the page cache, and reading b again brings them
// back. Verify calls it after each tensor, so checking a file does not grow
// the resident set to the file's size; the ONNX Runtime backend calls it
// after re-laying a tensor out.
func DropPages(b []byte) { mmap.DropPages(b) }
