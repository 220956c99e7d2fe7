// Package npy reads and writes NumPy .npy files of float32 arrays (format
// versions 1.0 to 3.0, little-endian, C order): the form in which the
// fixtures' golden logits are stored and `mmrun logits` writes its output, so
// that NumPy, PyTorch and the tests all read the same bytes.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// maxHeader bounds the header a reader accepts; NumPy's own are < 4 KiB.
const maxHeader = 1 << 16

// maxElems bounds the array size a reader accepts (4 GiB of float32).
const maxElems = 1 << 30

var magic = []byte("\x93NUMPY")

// Write writes a float32 array of the given shape (C order) to w.
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, got %d", shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	st := strings.Join(dims, ", ")
	if len(shape) == 1 {
		st += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", st)
	// magic(6) + version(2) + len(2) + header + '\n', padded to 64.
	total := 10 + len(h) + 1
	h += strings.Repeat(" ", (64-total%64)%64) + "\n"
	bw := bufio.NewWriter(w)
	bw.Write(magic)
	bw.Write([]byte{1, 0})
	binary.Write(bw, binary.LittleEndian, uint16(len(h)))
	bw.WriteString(h)
	var buf [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		bw.Write(buf[:])
	}
	return bw.Flush()
}

// WriteFile writes a float32 array to the named file.
func WriteFile(path string, shape []int, data []float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, shape, data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

var (
	descrRe = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	orderRe = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRe = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Read reads a little-endian float32 array in C order and returns its shape
// and values.
func Read(r io.Reader) ([]int, []float32, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("npy: header: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: header: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: header: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	if hlen > maxHeader {
		return nil, nil, fmt.Errorf("npy: header of %d bytes exceeds the limit of %d", hlen, maxHeader)
	}
	h := make([]byte, hlen)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, nil, fmt.Errorf("npy: header: %w", err)
	}
	d := descrRe.FindSubmatch(h)
	if d == nil || string(d[1]) != "<f4" {
		return nil, nil, fmt.Errorf("npy: want dtype '<f4', header says %q", h)
	}
	if o := orderRe.FindSubmatch(h); o == nil || string(o[1]) != "False" {
		return nil, nil, errors.New("npy: Fortran order is not supported")
	}
	s := shapeRe.FindSubmatch(h)
	if s == nil {
		return nil, nil, fmt.Errorf("npy: no shape in header %q", h)
	}
	var shape []int
	n := 1
	for _, f := range strings.Split(string(s[1]), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 || v > maxElems {
			return nil, nil, fmt.Errorf("npy: bad dimension %q", f)
		}
		shape = append(shape, v)
		n *= v
		if n > maxElems {
			return nil, nil, fmt.Errorf("npy: array of shape %s exceeds %d values", s[1], maxElems)
		}
	}
	raw := make([]byte, 4*n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, fmt.Errorf("npy: data: %w", err)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return shape, out, nil
}

// ReadFile reads a float32 array from the named file.
func ReadFile(path string) ([]int, []float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	shape, data, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return shape, data, nil
}
