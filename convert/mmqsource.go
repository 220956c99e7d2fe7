package convert

import (
	"fmt"
	"io"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/quant"
)

// mmqSource presents a model file as a checkpoint, so that a model file
// converts like any other input: to another type, or to GGUF.
type mmqSource struct {
	f       *format.File
	tensors []source.Tensor
}

func openMMQ(path string) (*mmqSource, error) {
	f, err := format.Open(path, format.OpenOptions{})
	if err != nil {
		return nil, err
	}
	s := &mmqSource{f: f}
	for _, t := range f.Tensors() {
		s.tensors = append(s.tensors, source.Tensor{Name: t.Name, DType: dtypeOf(t.Type), Shape: t.Shape})
	}
	return s, nil
}

func dtypeOf(t quant.Type) source.DType {
	switch t {
	case quant.F16:
		return source.F16
	case quant.BF16:
		return source.BF16
	case quant.Q8_0:
		return source.Q8_0
	case quant.Q4_0:
		return source.Q4_0
	}
	return source.F32
}

func (s *mmqSource) Path() string             { return s.f.Name }
func (s *mmqSource) Tensors() []source.Tensor { return s.tensors }
func (s *mmqSource) Metadata() map[string]any { return nil }
func (s *mmqSource) Close() error             { return s.f.Close() }
func (s *mmqSource) ReadRaw(name string) ([]byte, error) {
	t, ok := s.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", s.f.Name, name)
	}
	return append([]byte(nil), t.Data...), nil
}

func (s *mmqSource) ReadFloat32(name string) ([]float32, error) {
	t, ok := s.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", s.f.Name, name)
	}
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	out := make([]float32, n)
	if err := quant.Decode(t.Type, out, t.Data); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", s.f.Name, name, err)
	}
	return out, nil
}

// isModelFile reports whether path starts with the model file's magic.
func isModelFile(path string) bool {
	f, err := safeio.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, len(format.Magic))
	_, err = io.ReadFull(f, b)
	return err == nil && string(b) == format.Magic
}
