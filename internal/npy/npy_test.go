package npy

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{0}, {3}, {2, 3}, {2, 1, 4}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) * 0.5
		}
		var buf bytes.Buffer
		if err := Write(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		if (buf.Len()-4*n)%64 != 0 {
			t.Errorf("shape %v: header not padded to 64 bytes", shape)
		}
		gs, gd, err := Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gs, shape) || !slices.Equal(gd, data) {
			t.Errorf("shape %v: got %v %v", shape, gs, gd)
		}
	}
}

// TestReadsNumPy reads a file that NumPy wrote (a fixture's golden logits).
func TestReadsNumPy(t *testing.T) {
	shape, data, err := ReadFile(filepath.Join("..", "..", "testdata", "models", "mamba-tiny", "golden", "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0]*shape[1] != len(data) {
		t.Fatalf("shape %v with %d values", shape, len(data))
	}
}

func TestRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     []byte("\x93NUMPX\x01\x00\x00\x00"),
		"version":   []byte("\x93NUMPY\x09\x00\x00\x00"),
		"truncated": []byte("\x93NUMPY\x01\x00\x50\x00{'descr'"),
		"dtype":     append([]byte("\x93NUMPY\x01\x00\x3c\x00"), []byte("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }   \n")...),
		"huge":      append([]byte("\x93NUMPY\x01\x00\x45\x00"), []byte("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }\n")...),
	} {
		if _, _, err := Read(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
