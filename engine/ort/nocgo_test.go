//go:build !cgo

package ort

import (
	"errors"
	"testing"
)

func TestNoCgo(t *testing.T) {
	if Available {
		t.Fatal("Available in a CGO_ENABLED=0 build")
	}
	if err := Init("x"); !errors.Is(err, ErrNoCgo) {
		t.Errorf("Init = %v, want ErrNoCgo", err)
	}
	if _, err := NewSession([]byte{1}, []string{"x"}, []string{"y"}, Options{}); !errors.Is(err, ErrNoCgo) {
		t.Errorf("NewSession = %v, want ErrNoCgo", err)
	}
	t.Log("ONNX Runtime tests need a cgo build; 0 ran")
}
