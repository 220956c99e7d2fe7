package ort

import (
	"errors"
	"fmt"
)

// ErrNoCgo is returned by every call that needs ONNX Runtime in a binary
// built with CGO_ENABLED=0.
var ErrNoCgo = errors.New("this binary was built with CGO_ENABLED=0; the ONNX Runtime backend needs a cgo build (CGO_ENABLED=1 go build)")

// Options are a session's settings.
type Options struct {
	// IntraOpThreads is the thread count inside one operator; 0 leaves
	// ONNX Runtime's default (one per core).
	IntraOpThreads int
	// DisablePrepacking sets session.disable_prepacking=1: ONNX Runtime then
	// keeps initializers as given instead of copying MatMul/MatMulNBits
	// weights into its own blocked layout at session creation (less memory,
	// usually slower kernels).
	DisablePrepacking bool
	// AllowSpinning lets idle intra-op threads spin (ONNX Runtime's
	// default); off, they sleep, which is kinder to shared machines.
	AllowSpinning bool
	// ExternalDataDir is the folder external-data locations are relative to
	// for a session made from bytes (session config
	// session.model_external_initializers_file_folder_path). Sessions made
	// from a file use the file's folder.
	ExternalDataDir string
	// Config holds further session config entries (key -> value).
	Config map[string]string
}

// Tensor is a float32 tensor: Data in row-major order, len(Data) the
// product of Shape.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// check verifies len(Data) matches Shape.
func (t Tensor) check() error {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("shape %v has a negative dimension", t.Shape)
		}
		if d != 0 && n > (1<<62)/d {
			return fmt.Errorf("shape %v overflows", t.Shape)
		}
		n *= d
	}
	if int64(len(t.Data)) != n {
		return fmt.Errorf("shape %v needs %d values, have %d", t.Shape, n, len(t.Data))
	}
	return nil
}
