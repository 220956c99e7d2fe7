package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/internal/safeio"
)

// File is an open GGUF file. Its header is parsed; tensor data is read on
// demand. The methods are safe for concurrent use once Open returns.
type File struct {
	path      string
	r         io.ReaderAt
	closer    io.Closer
	size      int64
	version   uint32
	kvs       []KV
	kvIndex   map[string]int
	tensors   []TensorInfo
	byName    map[string]int
	alignment uint64
	dataStart uint64
}

// Open opens and parses the GGUF file at path.
func Open(path string) (*File, error) {
	fh, err := safeio.Open(path) // regular files only: a FIFO would block the open
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f, err := newReader(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// NewReader parses a GGUF file of size bytes read through r. name is used in
// error messages and returned by Path.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	return newReader(r, size, name)
}

// decoder reads the header sequentially, tracking its position so that every
// length read from the file is checked against the bytes that remain.
type decoder struct {
	br   *bufio.Reader
	pos  uint64
	size uint64
	buf  [8]byte
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %s", d.pos, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) remaining() uint64 { return d.size - d.pos }

func (d *decoder) read(n int) []byte {
	if d.err != nil {
		return d.buf[:n]
	}
	if uint64(n) > d.remaining() {
		d.fail("unexpected end of file")
		return d.buf[:n]
	}
	if _, err := io.ReadFull(d.br, d.buf[:n]); err != nil {
		d.fail("%v", err)
	}
	d.pos += uint64(n)
	return d.buf[:n]
}

func (d *decoder) u8() uint8   { return d.read(1)[0] }
func (d *decoder) u16() uint16 { return binary.LittleEndian.Uint16(d.read(2)) }
func (d *decoder) u32() uint32 { return binary.LittleEndian.Uint32(d.read(4)) }
func (d *decoder) u64() uint64 { return binary.LittleEndian.Uint64(d.read(8)) }

// str reads a gguf_string of at most max bytes.
func (d *decoder) str(max uint64, what string) string {
	n := d.u64()
	if d.err != nil {
		return ""
	}
	if n > max {
		d.fail("%s of %d bytes exceeds the limit of %d", what, n, max)
		return ""
	}
	if n > d.remaining() {
		d.fail("%s of %d bytes runs past the end of the file", what, n)
		return ""
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.br, b); err != nil {
		d.fail("%v", err)
		return ""
	}
	d.pos += n
	return string(b)
}

// value reads one value of type t; depth counts enclosing arrays.
func (d *decoder) value(t ValueType, depth int) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		b := d.u8()
		if b > 1 {
			d.fail("bool value %d is neither 0 nor 1", b)
		}
		return b == 1
	case TypeString:
		return d.str(MaxStringLen, "string")
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeArray:
		return d.array(depth + 1)
	}
	d.fail("unknown value type %d", uint32(t))
	return nil
}

// array reads an array's element type, count and elements into a typed
// slice. The count is checked against the bytes left in the file before
// anything is allocated.
func (d *decoder) array(depth int) any {
	if depth > MaxArrayNest {
		d.fail("arrays nested deeper than %d", MaxArrayNest)
		return nil
	}
	et := ValueType(d.u32())
	n := d.u64()
	if d.err != nil {
		return nil
	}
	ms := et.minSize()
	if ms == 0 {
		d.fail("array of unknown type %d", uint32(et))
		return nil
	}
	if n > MaxArrayLen {
		d.fail("array of %d elements exceeds the limit of %d", n, MaxArrayLen)
		return nil
	}
	if n*uint64(ms) > d.remaining() {
		d.fail("array of %d %s runs past the end of the file", n, et)
		return nil
	}
	switch et {
	case TypeUint8:
		return readSlice(d, n, et, func(v any) uint8 { return v.(uint8) })
	case TypeInt8:
		return readSlice(d, n, et, func(v any) int8 { return v.(int8) })
	case TypeUint16:
		return readSlice(d, n, et, func(v any) uint16 { return v.(uint16) })
	case TypeInt16:
		return readSlice(d, n, et, func(v any) int16 { return v.(int16) })
	case TypeUint32:
		return readSlice(d, n, et, func(v any) uint32 { return v.(uint32) })
	case TypeInt32:
		return readSlice(d, n, et, func(v any) int32 { return v.(int32) })
	case TypeFloat32:
		return readSlice(d, n, et, func(v any) float32 { return v.(float32) })
	case TypeBool:
		return readSlice(d, n, et, func(v any) bool { return v.(bool) })
	case TypeString:
		return readSlice(d, n, et, func(v any) string { return v.(string) })
	case TypeUint64:
		return readSlice(d, n, et, func(v any) uint64 { return v.(uint64) })
	case TypeInt64:
		return readSlice(d, n, et, func(v any) int64 { return v.(int64) })
	case TypeFloat64:
		return readSlice(d, n, et, func(v any) float64 { return v.(float64) })
	case TypeArray:
		s := make([]any, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			s = append(s, d.array(depth+1))
		}
		return s
	}
	return nil
}

func readSlice[T any](d *decoder, n uint64, et ValueType, conv func(any) T) []T {
	s := make([]T, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		v := d.value(et, 0)
		if d.err != nil {
			break
		}
		s = append(s, conv(v))
	}
	return s
}

func newReader(r io.ReaderAt, size int64, name string) (*File, error) {
	wrap := func(err error) error { return fmt.Errorf("gguf: %s: %w", name, err) }
	if size < 0 {
		return nil, wrap(errors.New("negative size"))
	}
	d := &decoder{br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), size: uint64(size)}
	f := &File{path: name, r: r, size: size, kvIndex: map[string]int{}, byName: map[string]int{}}

	if magic := d.read(4); d.err != nil || string(magic) != Magic {
		if d.err != nil {
			return nil, wrap(fmt.Errorf("not a GGUF file: %w", d.err))
		}
		return nil, wrap(fmt.Errorf("not a GGUF file (magic %q)", magic))
	}
	f.version = d.u32()
	switch {
	case d.err != nil:
		return nil, wrap(d.err)
	case f.version == 1:
		return nil, wrap(errors.New("GGUF version 1 is not supported (only 2 and 3)"))
	case f.version == 2 || f.version == 3:
	case f.version&0xffff == 0 && f.version>>16 != 0:
		return nil, wrap(fmt.Errorf("big-endian GGUF files are not supported (version bytes %#08x)", f.version))
	default:
		return nil, wrap(fmt.Errorf("unsupported GGUF version %d", f.version))
	}
	nTensors := d.u64()
	nKV := d.u64()
	if d.err != nil {
		return nil, wrap(d.err)
	}
	if nTensors > MaxTensors {
		return nil, wrap(fmt.Errorf("%d tensors exceed the limit of %d", nTensors, MaxTensors))
	}
	if nKV > MaxKVs {
		return nil, wrap(fmt.Errorf("%d metadata keys exceed the limit of %d", nKV, MaxKVs))
	}

	for i := uint64(0); i < nKV; i++ {
		key := d.str(MaxKeyLen, "key")
		t := ValueType(d.u32())
		if d.err != nil {
			return nil, wrap(fmt.Errorf("metadata pair %d: %w", i, d.err))
		}
		v := d.value(t, 0)
		if d.err != nil {
			return nil, wrap(fmt.Errorf("metadata key %q: %w", key, d.err))
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, wrap(fmt.Errorf("metadata key %q appears twice", key))
		}
		f.kvIndex[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{Key: key, Value: v})
	}

	f.alignment = DefaultAlignment
	if v, ok := f.Get(KeyAlignment); ok {
		a, ok := v.(uint32)
		if !ok {
			return nil, wrap(fmt.Errorf("metadata key %q must be UINT32, got %T", KeyAlignment, v))
		}
		if !validAlignment(uint64(a)) {
			return nil, wrap(fmt.Errorf("metadata key %q: alignment %d is not a power of two up to %d", KeyAlignment, a, MaxAlignment))
		}
		f.alignment = uint64(a)
	}

	for i := uint64(0); i < nTensors; i++ {
		var ti TensorInfo
		ti.Name = d.str(MaxKeyLen, "tensor name")
		nd := d.u32()
		if d.err != nil {
			return nil, wrap(fmt.Errorf("tensor info %d: %w", i, d.err))
		}
		if nd > MaxDims {
			return nil, wrap(fmt.Errorf("tensor %q: %d dims, at most %d allowed", ti.Name, nd, MaxDims))
		}
		ti.Dims = make([]uint64, nd)
		for j := range ti.Dims {
			ti.Dims[j] = d.u64()
		}
		ti.Type = GGMLType(d.u32())
		ti.Offset = d.u64()
		if d.err != nil {
			return nil, wrap(fmt.Errorf("tensor %q: %w", ti.Name, d.err))
		}
		if _, dup := f.byName[ti.Name]; dup {
			return nil, wrap(fmt.Errorf("tensor %q appears twice", ti.Name))
		}
		sz, err := dataSize(ti.Type, ti.Dims)
		if err != nil {
			return nil, wrap(fmt.Errorf("tensor %q: %w", ti.Name, err))
		}
		ti.Size = sz
		if ti.Offset%f.alignment != 0 {
			return nil, wrap(fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, f.alignment))
		}
		f.byName[ti.Name] = len(f.tensors)
		f.tensors = append(f.tensors, ti)
	}

	start, ok := alignUp(d.pos, f.alignment)
	if !ok {
		return nil, wrap(errors.New("data section offset overflows"))
	}
	f.dataStart = start
	if len(f.tensors) > 0 && start > uint64(size) {
		return nil, wrap(fmt.Errorf("data section starts at %d, past the end of the %d-byte file", start, size))
	}
	// Every tensor lies inside the file and no two overlap.
	order := make([]int, len(f.tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.tensors[order[a]].Offset < f.tensors[order[b]].Offset })
	avail := uint64(size) - min(start, uint64(size))
	var prevEnd uint64
	prevName := ""
	for _, i := range order {
		ti := f.tensors[i]
		if ti.Offset > avail || ti.Size > avail-ti.Offset {
			return nil, wrap(fmt.Errorf("tensor %q: data [%d, +%d) runs past the end of the file (%d data bytes)", ti.Name, ti.Offset, ti.Size, avail))
		}
		if ti.Offset < prevEnd {
			return nil, wrap(fmt.Errorf("tensor %q overlaps tensor %q", ti.Name, prevName))
		}
		if ti.Size > 0 {
			prevEnd, prevName = ti.Offset+ti.Size, ti.Name
		}
	}
	return f, nil
}

// Version is the file's GGUF version (2 or 3).
func (f *File) Version() uint32 { return f.version }

// Alignment is the file's data alignment.
func (f *File) Alignment() uint64 { return f.alignment }

// DataOffset is the absolute file offset of the data section.
func (f *File) DataOffset() uint64 { return f.dataStart }

// KVs returns the metadata in file order. The slice is the file's own: do
// not modify it.
func (f *File) KVs() []KV { return f.kvs }

// Get returns the value of key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.kvs[i].Value, true
}

// String returns the string value of key; ok is false when the key is
// absent or not a string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns the value of key when it is an integer of any width that is
// not negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Get(key)
	return asUint(v)
}

// TensorInfos returns the tensor infos in file order. The slice is the
// file's own: do not modify it.
func (f *File) TensorInfos() []TensorInfo { return f.tensors }

// TensorInfo returns the info of the named tensor.
func (f *File) TensorInfo(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// ReadTensor reads the named tensor's bytes as stored.
func (f *File) ReadTensor(name string) ([]byte, error) {
	ti, ok := f.TensorInfo(name)
	if !ok {
		return nil, fmt.Errorf("gguf: %s: no tensor %q", f.path, name)
	}
	// Bounds were checked at open: Offset+Size <= size-dataStart.
	b := make([]byte, ti.Size)
	if ti.Size == 0 {
		return b, nil
	}
	if _, err := f.r.ReadAt(b, int64(f.dataStart+ti.Offset)); err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", f.path, name, err)
	}
	return b, nil
}

// ReadAt reads len(p) bytes of the named tensor's data starting at byte off
// of that tensor, for callers that stream a large tensor in pieces.
func (f *File) ReadAt(name string, p []byte, off int64) (int, error) {
	ti, ok := f.TensorInfo(name)
	if !ok {
		return 0, fmt.Errorf("gguf: %s: no tensor %q", f.path, name)
	}
	if off < 0 || uint64(off) > ti.Size || uint64(len(p)) > ti.Size-uint64(off) {
		return 0, fmt.Errorf("gguf: %s: tensor %q: read [%d, +%d) outside its %d bytes", f.path, name, off, len(p), ti.Size)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.r.ReadAt(p, int64(f.dataStart+ti.Offset)+off)
	if err != nil {
		return n, fmt.Errorf("gguf: %s: tensor %q: %w", f.path, name, err)
	}
	return n, nil
}

// Path implements source.Reader.
func (f *File) Path() string { return f.path }

// Tensors implements source.Reader: names as stored, shapes in PyTorch
// order (the reverse of GGUF's dims), DType the ggml type's name.
func (f *File) Tensors() []source.Tensor {
	ts := make([]source.Tensor, len(f.tensors))
	for i, ti := range f.tensors {
		ts[i] = source.Tensor{Name: ti.Name, DType: dtypeOf(ti.Type), Shape: ti.Shape()}
	}
	return ts
}

func dtypeOf(t GGMLType) source.DType {
	switch t {
	case GGMLF32:
		return source.F32
	case GGMLF16:
		return source.F16
	case GGMLBF16:
		return source.BF16
	case GGMLF64:
		return source.F64
	case GGMLQ8_0:
		return source.Q8_0
	case GGMLQ4_0:
		return source.Q4_0
	case GGMLI8:
		return source.I8
	case GGMLI32:
		return source.I32
	case GGMLI64:
		return source.I64
	}
	return source.DType(t.String())
}

// ReadRaw implements source.Reader.
func (f *File) ReadRaw(name string) ([]byte, error) { return f.ReadTensor(name) }

// ReadFloat32 implements source.Reader: it decodes F32, F16, BF16, F64,
// Q8_0, Q4_0 and the integer types to float32, row-major in PyTorch order
// (GGUF's layout is already row-major with ne[0] fastest).
func (f *File) ReadFloat32(name string) ([]float32, error) {
	ti, ok := f.TensorInfo(name)
	if !ok {
		return nil, fmt.Errorf("gguf: %s: no tensor %q", f.path, name)
	}
	if !decodable(ti.Type) {
		return nil, fmt.Errorf("gguf: %s: tensor %q: type %s cannot be converted to float32", f.path, name, ti.Type)
	}
	raw, err := f.ReadTensor(name)
	if err != nil {
		return nil, err
	}
	out, err := decodeF32(ti.Type, raw)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Metadata implements source.Reader: every key/value, as in KVs. The map is
// new on each call.
func (f *File) Metadata() map[string]any {
	if len(f.kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(f.kvs))
	for _, kv := range f.kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// Close closes the underlying file (when opened with Open).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

var _ source.Reader = (*File)(nil)

// asUint converts any integer value that is not negative to uint64.
func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// asFloat converts any numeric value to float64.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	u, ok := asUint(v)
	return float64(u), ok
}
