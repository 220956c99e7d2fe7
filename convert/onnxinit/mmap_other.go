//go:build !unix

package onnxinit

import (
	"fmt"
	"io"
	"os"
)

// mapFile reads the file at path into memory (no mmap on this platform),
// refusing files over MaxFileSize before reading anything.
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
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, nil, fmt.Errorf("%s: %d bytes exceed protobuf's 2 GiB limit (larger models need external data, which is not supported)", path, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(fd, data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, func() error { return nil }, nil
}
