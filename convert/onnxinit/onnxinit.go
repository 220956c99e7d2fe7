// Package onnxinit reads the weights of an ONNX model from its graph
// initializers, as torch.onnx.export(..., export_params=True) stores them,
// and presents them as a source.Reader for the converter.
//
// It decodes the protobuf wire format itself (ModelProto.graph ->
// GraphProto.initializer -> TensorProto) instead of going through
// github.com/owulveryck/onnx-go: that module keeps its generated protobuf
// types in an internal package (onnx-go/internal/onnx/ir), so the only
// public way in is onnx.Model.UnmarshalBinary, which decodes the whole model
// into memory, builds a computation graph, and fails on the first tensor of
// a type it does not know (float16, bfloat16). The tests use onnx-go's
// public onnx.NewTensor as an independent decoder of the same tensors.
//
// The file is memory-mapped; Open indexes the initializers (name, type,
// dims, where their bytes are) and validates each one's element count
// against its dims, and the values are decoded on demand, one tensor at a
// time.
//
// Initializer names are reported as stored. torch.onnx.export keeps the
// state_dict names when constant folding is off; with folding on, a weight
// that the graph transposes is stored pre-transposed under a generated name
// such as "onnx::MatMul_26" (shape in x out). Such names are not guessed
// back: the converter reports them as unknown tensors.
//
// Supported element types: float, float16, bfloat16, double, int64, int32,
// int8, uint8 and bool, in raw_data or in the typed fields (float_data,
// int32_data, int64_data, double_data). Initializers stored as external data
// (data_location = EXTERNAL) and sparse initializers are refused with a
// message that says so; other element types are listed but cannot be read.
package onnxinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/internal/mmap"
	"github.com/memmamba/memmamba/quant"
)

// Limits on what Open accepts.
const (
	// MaxFileSize is protobuf's 2 GiB message limit: larger ONNX models must
	// use external data, which this package does not read.
	MaxFileSize = 1 << 31
	// MaxInitializers bounds the number of initializers.
	MaxInitializers = 1 << 20
	// MaxDims bounds a tensor's rank.
	MaxDims = 8
	// MaxNameLen bounds an initializer's name.
	MaxNameLen = 1 << 16
)

// ONNX TensorProto.DataType values.
const (
	typeFloat    = 1
	typeUint8    = 2
	typeInt8     = 3
	typeUint16   = 4
	typeInt16    = 5
	typeInt32    = 6
	typeInt64    = 7
	typeString   = 8
	typeBool     = 9
	typeFloat16  = 10
	typeDouble   = 11
	typeUint32   = 12
	typeUint64   = 13
	typeBfloat16 = 16
)

var typeNames = map[int64]string{
	1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
	8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
	14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16",
}

func typeName(t int64) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type " + strconv.FormatInt(t, 10)
}

// TensorProto field numbers.
const (
	tpDims         = 1
	tpDataType     = 2
	tpSegment      = 3
	tpFloatData    = 4
	tpInt32Data    = 5
	tpInt64Data    = 7
	tpName         = 8
	tpRawData      = 9
	tpDoubleData   = 10
	tpExternalData = 13
	tpDataLocation = 14
)

// elemInfo describes how an element type is stored: its size in raw_data,
// the typed field that holds it otherwise, and that field's encoding.
type elemInfo struct {
	size  int
	field uint64
	wire  int // wireFixed32, wireFixed64 or wireVarint
	dtype source.DType
}

var elems = map[int64]elemInfo{
	typeFloat:    {4, tpFloatData, wireFixed32, source.F32},
	typeFloat16:  {2, tpInt32Data, wireVarint, source.F16},
	typeBfloat16: {2, tpInt32Data, wireVarint, source.BF16},
	typeDouble:   {8, tpDoubleData, wireFixed64, source.F64},
	typeInt64:    {8, tpInt64Data, wireVarint, source.I64},
	typeInt32:    {4, tpInt32Data, wireVarint, source.I32},
	typeInt8:     {1, tpInt32Data, wireVarint, source.I8},
	typeUint8:    {1, tpInt32Data, wireVarint, source.U8},
	typeBool:     {1, tpInt32Data, wireVarint, source.Bool},
}

// initializer is the index entry of one TensorProto.
type initializer struct {
	name  string
	dtype int64
	dims  []int
	numel int
	msg   []byte // the TensorProto's bytes, a view of the file
}

// File is an open ONNX model. Its methods are safe for concurrent use.
type File struct {
	path   string
	data   []byte
	unmap  func() error
	inits  []initializer
	byName map[string]int
	meta   map[string]any
}

// Open maps the ONNX file at path and indexes its initializers.
func Open(path string) (*File, error) {
	data, unmap, err := mmap.Map(path, MaxFileSize)
	if errors.Is(err, mmap.ErrTooLarge) {
		err = fmt.Errorf("%w (protobuf's limit is 2 GiB; larger models need external data, which is not supported)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	f, err := Parse(data, path)
	if err != nil {
		unmap()
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

// Parse indexes the initializers of an ONNX model held in data. The File
// keeps views of data, which must not change while it is in use. name is
// used in error messages.
func Parse(data []byte, name string) (*File, error) {
	wrap := func(err error) error { return fmt.Errorf("onnx: %s: %w", name, err) }
	if len(data) > MaxFileSize {
		return nil, wrap(fmt.Errorf("%d bytes exceed protobuf's 2 GiB limit (larger models need external data, which is not supported)", len(data)))
	}
	f := &File{path: name, data: data, byName: map[string]int{}, meta: map[string]any{}}
	var graph []byte
	haveGraph := false
	it := fields{b: data}
	var fl field
	for it.next(&fl) {
		switch {
		case fl.num == 1 && fl.wire == wireVarint:
			f.meta["onnx.ir_version"] = int64(fl.val)
		case fl.num == 2 && fl.wire == wireBytes:
			f.meta["onnx.producer_name"] = string(fl.data)
		case fl.num == 3 && fl.wire == wireBytes:
			f.meta["onnx.producer_version"] = string(fl.data)
		case fl.num == 7 && fl.wire == wireBytes:
			if haveGraph {
				return nil, wrap(errors.New("the model has more than one graph field"))
			}
			graph, haveGraph = fl.data, true
		case fl.num == 14 && fl.wire == wireBytes:
			k, v, err := stringEntry(fl.data)
			if err != nil {
				return nil, wrap(fmt.Errorf("metadata_props: %w", err))
			}
			f.meta[k] = v
		}
	}
	if it.err != nil {
		return nil, wrap(fmt.Errorf("not a valid ONNX model: %w", it.err))
	}
	if !haveGraph {
		return nil, wrap(errors.New("not an ONNX model: no graph"))
	}
	it = fields{b: graph}
	for it.next(&fl) {
		switch {
		case fl.num == 5 && fl.wire == wireBytes:
			if len(f.inits) >= MaxInitializers {
				return nil, wrap(fmt.Errorf("more than %d initializers", MaxInitializers))
			}
			in, err := scanTensor(fl.data)
			if err != nil {
				if in.name != "" {
					return nil, wrap(fmt.Errorf("initializer %q: %w", in.name, err))
				}
				return nil, wrap(fmt.Errorf("initializer %d: %w", len(f.inits), err))
			}
			if _, dup := f.byName[in.name]; dup {
				return nil, wrap(fmt.Errorf("initializer %q appears twice", in.name))
			}
			f.byName[in.name] = len(f.inits)
			f.inits = append(f.inits, in)
		case fl.num == 15 && fl.wire == wireBytes:
			return nil, wrap(errors.New("the graph has sparse initializers, which are not supported"))
		}
	}
	if it.err != nil {
		return nil, wrap(fmt.Errorf("graph: %w", it.err))
	}
	return f, nil
}

// scanTensor indexes one TensorProto and checks that its data holds exactly
// the elements its dims call for.
func scanTensor(msg []byte) (initializer, error) {
	in := initializer{msg: msg}
	var dims []int64
	var hasType, external bool
	it := fields{b: msg}
	var f field
	for it.next(&f) {
		switch f.num {
		case tpName:
			if f.wire != wireBytes {
				return in, fmt.Errorf("name has wire type %d", f.wire)
			}
			if len(f.data) > MaxNameLen {
				return in, fmt.Errorf("name of %d bytes exceeds %d", len(f.data), MaxNameLen)
			}
			in.name = string(f.data)
		case tpDataType:
			if f.wire != wireVarint {
				return in, fmt.Errorf("data_type has wire type %d", f.wire)
			}
			in.dtype, hasType = int64(int32(f.val)), true
		case tpDims:
			err := eachValue(f, wireVarint, func(v uint64) error {
				if len(dims) >= MaxDims {
					return fmt.Errorf("more than %d dims", MaxDims)
				}
				dims = append(dims, int64(v))
				return nil
			})
			if err != nil {
				return in, fmt.Errorf("dims: %w", err)
			}
		case tpSegment:
			return in, errors.New("segmented tensors are not supported")
		case tpDataLocation:
			if f.wire == wireVarint && f.val == 1 {
				external = true
			}
		case tpExternalData:
			external = true
		}
	}
	if it.err != nil {
		return in, it.err
	}
	if in.name == "" {
		return in, errors.New("initializer without a name")
	}
	if external {
		return in, errors.New("data is stored outside the .onnx file (external data), which is not supported; re-save the model with onnx.save(model, path, save_as_external_data=False) if it is under 2 GiB")
	}
	if !hasType || in.dtype == 0 {
		return in, errors.New("data_type is undefined")
	}
	// Every stored element takes at least one byte, so a tensor cannot hold
	// more elements than its message has bytes.
	in.dims = make([]int, len(dims))
	zero := false
	for i, d := range dims {
		if d < 0 {
			return in, fmt.Errorf("dim %d is negative (%d)", i, d)
		}
		if d > MaxFileSize {
			return in, fmt.Errorf("dim %d is %d, larger than any file this package reads", i, d)
		}
		in.dims[i] = int(d)
		zero = zero || d == 0
	}
	n := uint64(1)
	for _, d := range dims {
		if zero {
			n = 0
			break
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > uint64(len(msg)) {
			return in, fmt.Errorf("dims %v call for more elements than the tensor's %d bytes can hold", dims, len(msg))
		}
		n = lo
	}
	in.numel = int(n)
	e, ok := elems[in.dtype]
	if !ok {
		return in, nil // listed, not readable
	}
	count, err := countValues(in, e)
	if err != nil {
		return in, err
	}
	if count != in.numel {
		return in, fmt.Errorf("holds %d %s values, its dims %v call for %d", count, typeName(in.dtype), in.dims, in.numel)
	}
	return in, nil
}

// countValues counts the elements stored in raw_data (when present, it
// wins) or in the type's typed field.
func countValues(in initializer, e elemInfo) (int, error) {
	it := fields{b: in.msg}
	var f field
	raw, hasRaw := []byte(nil), false
	count := 0
	for it.next(&f) {
		switch f.num {
		case tpRawData:
			if f.wire != wireBytes {
				return 0, fmt.Errorf("raw_data has wire type %d", f.wire)
			}
			raw, hasRaw = f.data, true
		case e.field:
			err := eachValue(f, e.wire, func(uint64) error { count++; return nil })
			if err != nil {
				return 0, err
			}
		}
	}
	if it.err != nil {
		return 0, it.err
	}
	if hasRaw {
		if len(raw)%e.size != 0 {
			return 0, fmt.Errorf("raw_data of %d bytes is not a whole number of %d-byte %s values", len(raw), e.size, typeName(in.dtype))
		}
		return len(raw) / e.size, nil
	}
	return count, nil
}

// eachValue calls fn for each scalar of a repeated field occurrence, packed
// (one length-delimited field) or not (one scalar field), of encoding wire.
func eachValue(f field, wire int, fn func(uint64) error) error {
	if f.wire == wire {
		return fn(f.val)
	}
	if f.wire != wireBytes {
		return fmt.Errorf("field %d has wire type %d, want %d", f.num, f.wire, wire)
	}
	b := f.data
	switch wire {
	case wireFixed32:
		if len(b)%4 != 0 {
			return fmt.Errorf("packed field %d of %d bytes is not whole 4-byte values", f.num, len(b))
		}
		for i := 0; i < len(b); i += 4 {
			if err := fn(uint64(binary.LittleEndian.Uint32(b[i:]))); err != nil {
				return err
			}
		}
	case wireFixed64:
		if len(b)%8 != 0 {
			return fmt.Errorf("packed field %d of %d bytes is not whole 8-byte values", f.num, len(b))
		}
		for i := 0; i < len(b); i += 8 {
			if err := fn(binary.LittleEndian.Uint64(b[i:])); err != nil {
				return err
			}
		}
	case wireVarint:
		for len(b) > 0 {
			v, n := uvarint(b)
			if n == 0 {
				return fmt.Errorf("packed field %d: bad varint", f.num)
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[n:]
		}
	}
	return nil
}

// Path implements source.Reader.
func (f *File) Path() string { return f.path }

// Tensors implements source.Reader: the initializers in file order, with
// their stored names and ONNX shapes (already PyTorch order). Element types
// this package cannot read are reported as "ONNX:<TYPE>".
func (f *File) Tensors() []source.Tensor {
	ts := make([]source.Tensor, len(f.inits))
	for i, in := range f.inits {
		dt := source.DType("ONNX:" + typeName(in.dtype))
		if e, ok := elems[in.dtype]; ok {
			dt = e.dtype
		}
		ts[i] = source.Tensor{Name: in.name, DType: dt, Shape: append([]int{}, in.dims...)}
	}
	return ts
}

func (f *File) lookup(name string) (initializer, elemInfo, error) {
	i, ok := f.byName[name]
	if !ok {
		return initializer{}, elemInfo{}, fmt.Errorf("onnx: %s: no initializer %q", f.path, name)
	}
	in := f.inits[i]
	e, ok := elems[in.dtype]
	if !ok {
		return in, e, fmt.Errorf("onnx: %s: initializer %q: element type %s is not supported", f.path, name, typeName(in.dtype))
	}
	return in, e, nil
}

// ReadRaw implements source.Reader: the tensor's elements as little-endian
// bytes of its type (raw_data as stored; the typed fields re-encoded, e.g.
// float16 from int32_data as 2 bytes each).
func (f *File) ReadRaw(name string) ([]byte, error) {
	in, e, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, in.numel*e.size)
	err = visit(in, e, func(raw []byte) {
		out = append(out, raw...)
	}, func(v uint64) {
		switch e.size {
		case 1:
			out = append(out, byte(v))
		case 2:
			out = binary.LittleEndian.AppendUint16(out, uint16(v))
		case 4:
			out = binary.LittleEndian.AppendUint32(out, uint32(v))
		case 8:
			out = binary.LittleEndian.AppendUint64(out, v)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: initializer %q: %w", f.path, name, err)
	}
	return out, nil
}

// ReadFloat32 implements source.Reader.
func (f *File) ReadFloat32(name string) ([]float32, error) {
	in, e, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 0, in.numel)
	conv := converter(in.dtype)
	err = visit(in, e, func(raw []byte) {
		for i := 0; i+e.size <= len(raw); i += e.size {
			var v uint64
			switch e.size {
			case 1:
				v = uint64(raw[i])
			case 2:
				v = uint64(binary.LittleEndian.Uint16(raw[i:]))
			case 4:
				v = uint64(binary.LittleEndian.Uint32(raw[i:]))
			case 8:
				v = binary.LittleEndian.Uint64(raw[i:])
			}
			out = append(out, conv(v))
		}
	}, func(v uint64) { out = append(out, conv(v)) })
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: initializer %q: %w", f.path, name, err)
	}
	return out, nil
}

// converter returns the function that turns one stored element (its bits,
// or its int32_data/int64_data value) into float32.
func converter(dtype int64) func(uint64) float32 {
	switch dtype {
	case typeFloat:
		return func(v uint64) float32 { return math.Float32frombits(uint32(v)) }
	case typeFloat16:
		return func(v uint64) float32 { return quant.F16ToF32(uint16(v)) }
	case typeBfloat16:
		return func(v uint64) float32 { return quant.BF16ToF32(uint16(v)) }
	case typeDouble:
		return func(v uint64) float32 { return float32(math.Float64frombits(v)) }
	case typeInt64:
		return func(v uint64) float32 { return float32(int64(v)) }
	case typeInt32:
		return func(v uint64) float32 { return float32(int32(v)) }
	case typeInt8:
		return func(v uint64) float32 { return float32(int8(v)) }
	case typeUint8:
		return func(v uint64) float32 { return float32(uint8(v)) }
	case typeBool:
		return func(v uint64) float32 {
			if v != 0 {
				return 1
			}
			return 0
		}
	}
	return func(uint64) float32 { return float32(math.NaN()) }
}

// visit walks the tensor's data: raw_data (if present) to onRaw, else each
// typed value to onValue. scanTensor already checked the element count.
func visit(in initializer, e elemInfo, onRaw func([]byte), onValue func(uint64)) error {
	it := fields{b: in.msg}
	var f field
	var raw []byte
	hasRaw := false
	for it.next(&f) {
		if f.num == tpRawData && f.wire == wireBytes {
			raw, hasRaw = f.data, true
		}
	}
	if it.err != nil {
		return it.err
	}
	if hasRaw {
		onRaw(raw)
		return nil
	}
	it = fields{b: in.msg}
	for it.next(&f) {
		if f.num != e.field {
			continue
		}
		if err := eachValue(f, e.wire, func(v uint64) error { onValue(v); return nil }); err != nil {
			return err
		}
	}
	return it.err
}

// Metadata implements source.Reader: the model's metadata_props, plus
// onnx.ir_version, onnx.producer_name and onnx.producer_version when set.
func (f *File) Metadata() map[string]any {
	if len(f.meta) == 0 {
		return nil
	}
	m := make(map[string]any, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

// Close unmaps the file.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap, f.data, f.inits, f.byName = nil, nil, nil, nil
	return err
}

// tensorProto returns the stored bytes of the named initializer's
// TensorProto (for tests that decode it independently).
func (f *File) tensorProto(name string) ([]byte, bool) {
	i, ok := f.byName[name]
	if !ok {
		return nil, false
	}
	return f.inits[i].msg, true
}

var _ source.Reader = (*File)(nil)
