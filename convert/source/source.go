// Package source is the common view of a checkpoint file that the
// converter's readers (safetensors, torch.save zip, GGUF, ONNX) give: a list
// of named tensors, each read on demand, one at a time, so a conversion
// streams and never holds the whole model in memory.
package source

import (
	"fmt"
	"io"

	"github.com/memmamba/memmamba/internal/safeio"
)

// DType is a tensor's element type as stored in the source file.
type DType string

// Element types a reader may report. Readers report the type as stored;
// ReadFloat32 converts the float and block types to float32 and refuses the
// integer and boolean ones, naming the tensor (a model's weights are never
// integers).
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	Q8_0 DType = "Q8_0"
	Q4_0 DType = "Q4_0"
	I64  DType = "I64"
	I32  DType = "I32"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Tensor describes one tensor of a source file.
type Tensor struct {
	// Name is the name as stored in the file (before any renaming).
	Name  string
	DType DType
	// Shape in PyTorch order (row-major, outermost first).
	Shape []int
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// String formats the tensor as name[shape] dtype.
func (t Tensor) String() string { return fmt.Sprintf("%s%v %s", t.Name, t.Shape, t.DType) }

// Reader is an open checkpoint file.
type Reader interface {
	// Path is the file's path, for error messages.
	Path() string
	// Tensors lists the file's tensors in file order.
	Tensors() []Tensor
	// ReadFloat32 reads the named tensor and converts it to float32,
	// row-major in the order of Shape.
	ReadFloat32(name string) ([]float32, error)
	// ReadRaw returns the named tensor's bytes exactly as stored (for
	// bit-exact copies of f16, bf16 and block-quantised data).
	ReadRaw(name string) ([]byte, error)
	// Metadata is the file's free-form metadata: GGUF key/values,
	// safetensors' __metadata__, ONNX metadata_props; nil when none.
	Metadata() map[string]any
	Close() error
}

// OpenWith opens the file at path and hands it to newReader, which reads it
// through ReadAt: the shared start of the readers' Open functions. On
// success the file is returned for the reader to close; if newReader
// fails, it is closed here.
func OpenWith[T any](path string, newReader func(r io.ReaderAt, size int64, name string) (T, error)) (T, io.Closer, error) {
	var zero T
	f, err := safeio.Open(path) // regular files only: a FIFO would block the open
	if err != nil {
		return zero, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return zero, nil, err
	}
	r, err := newReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return zero, nil, err
	}
	return r, f, nil
}
