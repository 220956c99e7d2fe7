package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/memmamba/memmamba/internal/safeio"
)

// Writer writes a GGUF v3 file: the header at creation, then each tensor's
// data, in the order the tensor infos were given, padded to the alignment.
// The output depends only on the inputs (metadata in the given order, no
// timestamps), so identical inputs give byte-identical files.
type Writer struct {
	w       *bufio.Writer
	file    *os.File // set by Create
	tmp     string   // Create's temporary path
	final   string   // Create's destination
	tensors []TensorInfo
	next    int
	align   uint64
	err     error
}

// Create writes a GGUF file at path. The data goes to a temporary file in
// the same directory that Close renames to path once every tensor is
// written, so a failed conversion leaves no partial file behind.
func Create(path string, kvs []KV, tensors []TensorInfo) (*Writer, error) {
	// ".NAME.*.tmp", registered so that SIGINT and SIGTERM remove it.
	fh, err := safeio.CreateTemp(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	// CreateTemp makes the file private; the output is an ordinary file.
	if err := fh.Chmod(0o644); err != nil {
		fh.Close()
		safeio.RemoveTemp(fh.Name())
		return nil, fmt.Errorf("gguf: %w", err)
	}
	w, err := NewWriter(fh, kvs, tensors)
	if err != nil {
		fh.Close()
		safeio.RemoveTemp(fh.Name())
		return nil, fmt.Errorf("%w (writing %s)", err, path)
	}
	w.file, w.tmp, w.final = fh, fh.Name(), path
	return w, nil
}

// NewWriter validates the metadata and tensor infos (Name, Dims, Type; the
// offsets are computed here) and writes the header to dst. The alignment is
// general.alignment when kvs sets it (a uint32 power of two), else 32.
func NewWriter(dst io.Writer, kvs []KV, tensors []TensorInfo) (*Writer, error) {
	w := &Writer{w: bufio.NewWriterSize(dst, 1<<20), align: DefaultAlignment}
	seen := map[string]bool{}
	for _, kv := range kvs {
		if kv.Key == "" || len(kv.Key) > MaxKeyLen {
			return nil, fmt.Errorf("gguf: metadata key %q: length must be 1..%d", kv.Key, MaxKeyLen)
		}
		if seen[kv.Key] {
			return nil, fmt.Errorf("gguf: metadata key %q given twice", kv.Key)
		}
		seen[kv.Key] = true
		if _, err := valueType(kv.Value, 0); err != nil {
			return nil, fmt.Errorf("gguf: metadata key %q: %w", kv.Key, err)
		}
		if kv.Key == KeyAlignment {
			a, ok := kv.Value.(uint32)
			if !ok || !validAlignment(uint64(a)) {
				return nil, fmt.Errorf("gguf: metadata key %q must be a uint32 power of two up to %d, got %v (%T)", KeyAlignment, MaxAlignment, kv.Value, kv.Value)
			}
			w.align = uint64(a)
		}
	}
	if len(kvs) > MaxKVs || len(tensors) > MaxTensors {
		return nil, fmt.Errorf("gguf: %d keys and %d tensors exceed the limits of %d and %d", len(kvs), len(tensors), MaxKVs, MaxTensors)
	}
	names := map[string]bool{}
	var off uint64
	for _, t := range tensors {
		if t.Name == "" || len(t.Name) > MaxNameLen {
			return nil, fmt.Errorf("gguf: tensor %q: name must be 1..%d bytes", t.Name, MaxNameLen)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: tensor %q given twice", t.Name)
		}
		names[t.Name] = true
		sz, err := dataSize(t.Type, t.Dims)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		ti := TensorInfo{Name: t.Name, Dims: append([]uint64(nil), t.Dims...), Type: t.Type, Offset: off, Size: sz}
		w.tensors = append(w.tensors, ti)
		end, ok := alignUp(off+sz, w.align)
		if !ok || off+sz < off {
			return nil, fmt.Errorf("gguf: tensor %q: data offset overflows", t.Name)
		}
		off = end
	}

	var b []byte
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b = appendString(b, kv.Key)
		t, _ := valueType(kv.Value, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
		b = appendValue(b, kv.Value)
	}
	for _, t := range w.tensors {
		b = appendString(b, t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Type))
		b = binary.LittleEndian.AppendUint64(b, t.Offset)
	}
	b = pad(b, uint64(len(b)), w.align)
	if _, err := w.w.Write(b); err != nil {
		return nil, fmt.Errorf("gguf: writing header: %w", err)
	}
	return w, nil
}

// Tensors returns the tensor infos with the offsets and sizes the writer
// computed.
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// WriteTensor writes the next tensor's data, which must be the tensor named
// name, of exactly its size in bytes.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.next >= len(w.tensors) {
		return fmt.Errorf("gguf: tensor %q: all %d tensors are already written", name, len(w.tensors))
	}
	t := w.tensors[w.next]
	if name != t.Name {
		return fmt.Errorf("gguf: tensor %q written out of order: expected %q", name, t.Name)
	}
	if uint64(len(data)) != t.Size {
		return fmt.Errorf("gguf: tensor %q: %d bytes given, %s %v needs %d", name, len(data), t.Type, t.Dims, t.Size)
	}
	if _, err := w.w.Write(data); err != nil {
		w.err = fmt.Errorf("gguf: tensor %q: %w", name, err)
		return w.err
	}
	if p := pad(nil, t.Size, w.align); len(p) > 0 {
		if _, err := w.w.Write(p); err != nil {
			w.err = fmt.Errorf("gguf: tensor %q: %w", name, err)
			return w.err
		}
	}
	w.next++
	return nil
}

// Close flushes the output. It fails if some tensor was not written. With
// Create, it closes the file and moves it into place, or removes it on
// failure.
func (w *Writer) Close() error {
	err := w.err
	if err == nil && w.next != len(w.tensors) {
		err = fmt.Errorf("gguf: only %d of %d tensors written (next is %q)", w.next, len(w.tensors), w.tensors[w.next].Name)
	}
	if err == nil {
		if ferr := w.w.Flush(); ferr != nil {
			err = fmt.Errorf("gguf: %w", ferr)
		}
	}
	if w.file == nil {
		return err
	}
	if err == nil {
		if serr := w.file.Sync(); serr != nil {
			err = fmt.Errorf("gguf: %w", serr)
		}
	}
	if cerr := w.file.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("gguf: %w", cerr)
	}
	w.file = nil
	if err == nil {
		if rerr := safeio.Publish(w.tmp, w.final, true); rerr != nil {
			err = fmt.Errorf("gguf: %w", rerr)
		}
	}
	if err != nil {
		safeio.RemoveTemp(w.tmp)
		return fmt.Errorf("%w (writing %s)", err, w.final)
	}
	return nil
}

// pad appends zeros to b so that n (the position after b) becomes a
// multiple of align.
func pad(b []byte, n, align uint64) []byte {
	if r := n % align; r != 0 {
		b = append(b, make([]byte, align-r)...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// valueType returns the GGUF type of a Go value, or an error naming the
// unsupported Go type.
func valueType(v any, depth int) (ValueType, error) {
	switch x := v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		if len(x) > MaxStringLen {
			return 0, fmt.Errorf("string of %d bytes exceeds %d", len(x), MaxStringLen)
		}
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		if depth+1 > MaxArrayNest {
			return 0, fmt.Errorf("arrays nested deeper than %d", MaxArrayNest)
		}
		if n := sliceLen(x); n > MaxArrayLen {
			return 0, fmt.Errorf("array of %d elements exceeds %d", n, MaxArrayLen)
		}
		if s, ok := x.([]string); ok {
			for _, e := range s {
				if len(e) > MaxStringLen {
					return 0, fmt.Errorf("string of %d bytes exceeds %d", len(e), MaxStringLen)
				}
			}
		}
		return TypeArray, nil
	case []any:
		if depth+1 > MaxArrayNest {
			return 0, fmt.Errorf("arrays nested deeper than %d", MaxArrayNest)
		}
		if len(x) > MaxArrayLen {
			return 0, fmt.Errorf("array of %d elements exceeds %d", len(x), MaxArrayLen)
		}
		for i, e := range x {
			t, err := valueType(e, depth+1)
			if err != nil {
				return 0, fmt.Errorf("element %d: %w", i, err)
			}
			if t != TypeArray {
				return 0, fmt.Errorf("element %d: []any holds arrays only (use a typed slice for scalars), got %T", i, e)
			}
		}
		return TypeArray, nil
	}
	return 0, errors.New(unsupportedType(v))
}

func unsupportedType(v any) string {
	return fmt.Sprintf("unsupported value type %T (want a sized integer, float32, float64, bool, string, a typed slice of those, or []any of arrays)", v)
}

func sliceLen(v any) int {
	switch x := v.(type) {
	case []uint8:
		return len(x)
	case []int8:
		return len(x)
	case []uint16:
		return len(x)
	case []int16:
		return len(x)
	case []uint32:
		return len(x)
	case []int32:
		return len(x)
	case []float32:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case []uint64:
		return len(x)
	case []int64:
		return len(x)
	case []float64:
		return len(x)
	case []any:
		return len(x)
	}
	return 0
}

// appendValue encodes v, which valueType accepted.
func appendValue(b []byte, v any) []byte {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		return appendString(b, x)
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	case []uint8:
		return appendArray(b, TypeUint8, x)
	case []int8:
		return appendArray(b, TypeInt8, x)
	case []uint16:
		return appendArray(b, TypeUint16, x)
	case []int16:
		return appendArray(b, TypeInt16, x)
	case []uint32:
		return appendArray(b, TypeUint32, x)
	case []int32:
		return appendArray(b, TypeInt32, x)
	case []float32:
		return appendArray(b, TypeFloat32, x)
	case []bool:
		return appendArray(b, TypeBool, x)
	case []string:
		return appendArray(b, TypeString, x)
	case []uint64:
		return appendArray(b, TypeUint64, x)
	case []int64:
		return appendArray(b, TypeInt64, x)
	case []float64:
		return appendArray(b, TypeFloat64, x)
	case []any:
		return appendArray(b, TypeArray, x)
	}
	return b
}

func appendArray[T any](b []byte, et ValueType, s []T) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(et))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	for _, e := range s {
		b = appendValue(b, e)
	}
	return b
}
