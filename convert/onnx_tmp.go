package convert

import (
	"errors"

	"github.com/memmamba/memmamba/convert/source"
)

func openONNX(path string) (source.Reader, error) { return nil, errors.New("onnx: not yet") }
