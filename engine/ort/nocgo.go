//go:build !cgo

package ort

// Available reports whether this build can load ONNX Runtime.
const Available = false

// Init fails: no cgo.
func Init(libPath string) error { return ErrNoCgo }

// Version fails: no cgo.
func Version() (string, error) { return "", ErrNoCgo }

// Session is a stub without cgo.
type Session struct{}

// NewSession fails: no cgo.
func NewSession(model []byte, inputs, outputs []string, opts Options) (*Session, error) {
	return nil, ErrNoCgo
}

// NewSessionFromFile fails: no cgo.
func NewSessionFromFile(path string, inputs, outputs []string, opts Options) (*Session, error) {
	return nil, ErrNoCgo
}

// Run fails: no cgo.
func (s *Session) Run(inputs ...Tensor) ([]Tensor, error) { return nil, ErrNoCgo }

// RunInto fails: no cgo.
func (s *Session) RunInto(inputs, outputs []Tensor) error { return ErrNoCgo }

// Close does nothing.
func (s *Session) Close() error { return nil }
