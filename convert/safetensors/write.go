package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/quant"
)

// NamedTensor is one tensor to write: its name, dtype, shape and
// little-endian bytes (len(Data) must equal the element count times the
// dtype's size).
type NamedTensor struct {
	Name  string
	DType source.DType
	Shape []int
	Data  []byte
}

// F32 makes an F32 NamedTensor from values (row-major in shape's order).
func F32(name string, shape []int, values []float32) NamedTensor {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return NamedTensor{Name: name, DType: source.F32, Shape: shape, Data: b}
}

// F16 makes an F16 NamedTensor, rounding values to half precision.
func F16(name string, shape []int, values []float32) NamedTensor {
	b := make([]byte, 2*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint16(b[2*i:], quant.F32ToF16(v))
	}
	return NamedTensor{Name: name, DType: source.F16, Shape: shape, Data: b}
}

// BF16 makes a BF16 NamedTensor, rounding values to bfloat16.
func BF16(name string, shape []int, values []float32) NamedTensor {
	b := make([]byte, 2*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint16(b[2*i:], quant.F32ToBF16(v))
	}
	return NamedTensor{Name: name, DType: source.BF16, Shape: shape, Data: b}
}

// dtypeRank orders dtypes as the Python library's Dtype enum does (BOOL,
// U8, I8, F16, BF16, I32, F32, F64, I64 among the ones supported here); the
// writer lays tensors out by descending rank, then by name, as
// safetensors.serialize does, so every tensor stays aligned to its element
// size.
var dtypeRank = map[source.DType]int{
	source.Bool: 0, source.U8: 1, source.I8: 2, source.F16: 3, source.BF16: 4,
	source.I32: 5, source.F32: 6, source.F64: 7, source.I64: 8,
}

// Encode returns the safetensors serialisation of tensors and metadata
// (which may be nil), laid out as the Python library lays it out: the
// header is compact JSON with __metadata__ first (keys sorted) and the
// tensors in data order, padded with spaces to a multiple of 8 bytes; the
// tensors are sorted by descending dtype then name.
func Encode(tensors []NamedTensor, metadata map[string]string) ([]byte, error) {
	sorted := make([]NamedTensor, len(tensors))
	copy(sorted, tensors)
	seen := make(map[string]bool, len(tensors))
	for _, t := range sorted {
		if t.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		size := dtypeSize[t.DType]
		if size == 0 {
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q", t.Name, t.DType)
		}
		if len(t.Shape) > MaxRank {
			return nil, fmt.Errorf("tensor %q: rank %d exceeds the limit of %d", t.Name, len(t.Shape), MaxRank)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 || d != 0 && n > math.MaxInt/d {
				return nil, fmt.Errorf("tensor %q: bad shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if len(t.Data)%size != 0 || n != len(t.Data)/size {
			return nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, have %d", t.Name, t.Shape, t.DType, n*size, len(t.Data))
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := dtypeRank[sorted[i].DType], dtypeRank[sorted[j].DType]
		if ri != rj {
			return ri > rj
		}
		return sorted[i].Name < sorted[j].Name
	})

	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	if metadata != nil {
		sep()
		writeJSONString(&h, metadataKey)
		h.WriteString(":{")
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	off := 0
	for _, t := range sorted {
		sep()
		writeJSONString(&h, t.Name)
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, t.DType)
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			fmt.Fprintf(&h, "%d", d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+len(t.Data))
		off += len(t.Data)
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > MaxHeaderBytes {
		return nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", h.Len(), MaxHeaderBytes)
	}

	out := make([]byte, 8, 8+h.Len()+off)
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	out = append(out, h.Bytes()...)
	for _, t := range sorted {
		out = append(out, t.Data...)
	}
	return out, nil
}

// writeJSONString writes s as a JSON string without Go's HTML escaping
// (serde_json does not escape <, > and &).
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// Write writes tensors and metadata (nil for none) to path as a safetensors
// file laid out as Encode describes. It writes a temporary file beside path
// and renames it into place, so readers never see a partial file.
func Write(path string, tensors []NamedTensor, metadata map[string]string) error {
	data, err := Encode(tensors, metadata)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
