// Package mmap maps a regular file read-only into memory, for the readers
// that use tensors in place (the model file, ONNX files). Where the system
// has no mmap (golang.org/x/sys/unix), the file is read into a buffer
// aligned to 64 bytes instead, so callers see the same contract: a
// read-only byte slice whose start is at least 64-byte aligned, and an
// unmap function.
package mmap

import (
	"errors"

	"github.com/memmamba/memmamba/internal/safeio"
)

// Errors of Map, wrapped with the path.
var (
	ErrNotRegular = safeio.ErrNotRegular
	ErrEmpty      = errors.New("empty file")
	ErrTooLarge   = errors.New("too large")
)

// Align is the alignment the read fallback guarantees (a mapping starts on
// a page boundary, which is more).
const Align = 64

// DropPages tells the kernel that this process is done, for now, with the
// mapped pages wholly inside b, so that they leave its resident set; they
// stay in the page cache, and reading b again brings them back. Where files
// are read rather than mapped it does nothing.
func DropPages(b []byte) { dropPages(b) }
