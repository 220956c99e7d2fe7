// Package safetensors reads and writes the safetensors checkpoint format
// (Hugging Face's): an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {string: string}}, then the tensors' bytes.
//
// The reader implements source.Reader. It validates the whole header when the
// file is opened (hard limits on the header size and rank, checked
// arithmetic on every offset, no overlapping or out-of-range tensors, unique
// names) and reads each tensor on demand with ReadAt, so a conversion holds
// one tensor at a time. OpenIndex presents a sharded checkpoint
// (model.safetensors.index.json plus its shards) as one reader.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/memmamba/memmamba/convert/source"
)

// Hard limits on what a file may declare.
const (
	// MaxHeaderBytes bounds the JSON header, which is read into memory
	// whole. The Python library allows 100 MiB; real headers take about
	// 150 bytes a tensor (a model of 10,000 tensors, 1.5 MB), so 16 MiB
	// refuses nothing real and bounds what a hostile header costs.
	MaxHeaderBytes = 16 << 20
	// MaxRank bounds a tensor's number of dimensions.
	MaxRank = 8
)

// metadataKey is the reserved header key of the free-form metadata.
const metadataKey = "__metadata__"

// dtypeSize gives the element size of every dtype the package supports.
var dtypeSize = map[source.DType]int{
	source.F64:  8,
	source.F32:  4,
	source.F16:  2,
	source.BF16: 2,
	source.I64:  8,
	source.I32:  4,
	source.I8:   1,
	source.U8:   1,
	source.Bool: 1,
}

// DTypeSize returns the size in bytes of one element of dt, or 0 when the
// format (as this package supports it) has no such dtype.
func DTypeSize(dt source.DType) int { return dtypeSize[dt] }

// entry is one tensor's header record after validation.
type entry struct {
	source.Tensor
	begin, end int64 // relative to the start of the data section
}

// File is an open .safetensors file. It implements source.Reader. Its
// methods are safe for concurrent use (reads use ReadAt).
type File struct {
	path      string
	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	tensors   []source.Tensor
	byName    map[string]*entry
	meta      map[string]string
}

var _ source.Reader = (*File)(nil)

// Open opens and validates a .safetensors file. The tensors' data is not
// read until asked for.
func Open(path string) (*File, error) {
	sf, closer, err := source.OpenWith(path, NewReader)
	if err != nil {
		return nil, err
	}
	sf.closer = closer
	return sf, nil
}

// NewReader validates the safetensors data of r, which holds size bytes;
// name is used in error messages and returned by Path. Close does not close
// r.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	fail := func(format string, a ...any) (*File, error) {
		return nil, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...))
	}
	if size < 8 {
		return fail("%d bytes is too short for a safetensors file (no 8-byte header length)", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%s: reading the header length: %w", name, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > MaxHeaderBytes {
		return fail("header length %d exceeds the %d-byte limit (a real header takes about 150 bytes a tensor; not a safetensors file?)", hlen, MaxHeaderBytes)
	}
	if hlen > uint64(size-8) {
		return fail("header length %d exceeds the file's %d bytes after the length field (truncated or not a safetensors file)", hlen, size-8)
	}
	if hlen < 2 {
		return fail("header length %d is too short for a JSON object", hlen)
	}
	header := make([]byte, hlen)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("%s: reading the %d-byte header: %w", name, hlen, err)
	}
	dataStart := 8 + int64(hlen)
	dataSize := size - dataStart
	entries, meta, err := parseHeader(header, dataSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &File{
		path:      name,
		r:         r,
		dataStart: dataStart,
		byName:    make(map[string]*entry, len(entries)),
		meta:      meta,
		tensors:   make([]source.Tensor, len(entries)),
	}
	for i, e := range entries {
		f.byName[e.Name] = e
		f.tensors[i] = e.Tensor
	}
	return f, nil
}

// rawEntry is a header record as decoded, before validation. The pointers
// tell a missing field from a zero one.
type rawEntry struct {
	DType       *string   `json:"dtype"`
	Shape       *[]int64  `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

// parseHeader decodes and validates the JSON header against a data section
// of dataSize bytes. It returns the entries in data order (ties, which only
// empty tensors can have, in header order).
func parseHeader(header []byte, dataSize int64) ([]*entry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("header is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("header is not a JSON object")
	}
	var (
		entries []*entry
		meta    map[string]string
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("header is not valid JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("header key %v is not a string", tok)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("tensor %q appears twice in the header", name)
		}
		seen[name] = true
		if name == metadataKey {
			var m map[string]string
			if err := dec.Decode(&m); err != nil {
				return nil, nil, fmt.Errorf("%s is not an object of strings: %w", metadataKey, err)
			}
			meta = m
			continue
		}
		raw, err := decodeRecord(dec)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad header record: %w", name, err)
		}
		e, err := checkEntry(name, raw, dataSize)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	// Only whitespace (the writer's padding) may follow the object.
	rest := header[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return nil, nil, fmt.Errorf("header has %d bytes of trailing data after the JSON object", len(rest))
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].begin < entries[j].begin })
	if err := checkOverlaps(entries); err != nil {
		return nil, nil, err
	}
	return entries, meta, nil
}

// checkOverlaps checks that no two tensors of entries (sorted by begin)
// share a byte. A zero-size tensor holds no byte, so it overlaps nothing,
// wherever it lies and in whatever order the header lists it.
func checkOverlaps(entries []*entry) error {
	var prev *entry // the non-empty tensor that ends last so far
	for _, cur := range entries {
		if cur.end == cur.begin {
			continue
		}
		if prev != nil && cur.begin < prev.end {
			return fmt.Errorf("tensor %q (bytes %d..%d) overlaps tensor %q (bytes %d..%d)",
				cur.Name, cur.begin, cur.end, prev.Name, prev.begin, prev.end)
		}
		if prev == nil || cur.end > prev.end {
			prev = cur
		}
	}
	return nil
}

// decodeRecord reads one tensor's header record token by token, so that
// no field makes the decoder build more than its limit allows: the shape
// is read one dimension at a time and refused at dimension MaxRank+1, the
// offsets at a third value, and unknown fields are skipped without being
// built. A field given twice takes its last value, as encoding/json does.
func decodeRecord(dec *json.Decoder) (rawEntry, error) {
	var raw rawEntry
	if err := expectDelim(dec, '{'); err != nil {
		return raw, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return raw, err
		}
		key, _ := tok.(string)
		switch key {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return raw, err
			}
			switch v := tok.(type) {
			case string:
				raw.DType = &v
			case nil:
				raw.DType = nil
			default:
				return raw, fmt.Errorf("dtype %v is not a string", tok)
			}
		case "shape":
			dims, err := readInts(dec, "shape", MaxRank, func(n json.Number) (int64, error) {
				return strconv.ParseInt(n.String(), 10, 64)
			})
			if err != nil {
				return raw, err
			}
			raw.Shape = dims
		case "data_offsets":
			offs, err := readInts(dec, "data_offsets", 2, func(n json.Number) (uint64, error) {
				return strconv.ParseUint(n.String(), 10, 64)
			})
			if err != nil {
				return raw, err
			}
			raw.DataOffsets = offs
		default:
			if err := skipValue(dec); err != nil {
				return raw, err
			}
		}
	}
	_, err := dec.Token() // the closing '}'
	return raw, err
}

// readInts reads a JSON array of at most limit integers (or null, which
// gives nil), parsing each with parse, and stops at the first value past
// the limit.
func readInts[T int64 | uint64](dec *json.Decoder, field string, limit int, parse func(json.Number) (T, error)) (*[]T, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("%s is %v, not an array", field, tok)
	}
	out := []T{}
	for dec.More() {
		if len(out) == limit {
			if field == "shape" {
				return nil, fmt.Errorf("rank %d or more exceeds the limit of %d", limit+1, limit)
			}
			return nil, fmt.Errorf("%s has %d values or more, want [begin, end]", field, limit+1)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		n, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s value %v is not a number", field, tok)
		}
		v, err := parse(n)
		if err != nil {
			if strings.HasPrefix(n.String(), "-") && field == "shape" {
				return nil, fmt.Errorf("dimension %d is negative (%s)", len(out), n)
			}
			return nil, fmt.Errorf("%s value %s is not an integer in range", field, n)
		}
		out = append(out, v)
	}
	_, err = dec.Token() // the closing ']'
	return &out, err
}

// expectDelim reads one token and checks that it is the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("want %v, got %v", d, tok)
	}
	return nil
}

// skipValue reads one JSON value of any nesting without building it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// checkEntry validates one header record: a known dtype, rank and dims in
// range, an element count whose byte size equals the offsets' span, and
// offsets within the data section.
func checkEntry(name string, raw rawEntry, dataSize int64) (*entry, error) {
	if raw.DType == nil || raw.Shape == nil || raw.DataOffsets == nil {
		return nil, fmt.Errorf("header record lacks dtype, shape or data_offsets")
	}
	dt := source.DType(*raw.DType)
	size := dtypeSize[dt]
	if size == 0 {
		return nil, fmt.Errorf("unsupported dtype %q (want F64, F32, F16, BF16, I64, I32, I8, U8 or BOOL)", *raw.DType)
	}
	shape := *raw.Shape
	if len(shape) > MaxRank {
		return nil, fmt.Errorf("rank %d exceeds the limit of %d", len(shape), MaxRank)
	}
	dims := make([]int, len(shape))
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("dimension %d is negative (%d)", i, d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return nil, fmt.Errorf("shape %v overflows", shape)
		}
		n *= d
		dims[i] = int(d)
	}
	if n > math.MaxInt64/int64(size) {
		return nil, fmt.Errorf("shape %v of %s overflows", shape, dt)
	}
	nbytes := n * int64(size)
	off := *raw.DataOffsets
	if len(off) != 2 {
		return nil, fmt.Errorf("data_offsets has %d values, want [begin, end]", len(off))
	}
	begin, end := off[0], off[1]
	if begin > end {
		return nil, fmt.Errorf("data_offsets [%d, %d] run backwards", begin, end)
	}
	if end > uint64(dataSize) {
		return nil, fmt.Errorf("data_offsets [%d, %d] run past the data section's %d bytes", begin, end, dataSize)
	}
	if end-begin != uint64(nbytes) {
		return nil, fmt.Errorf("data_offsets [%d, %d] span %d bytes but shape %v of %s needs %d",
			begin, end, end-begin, shape, dt, nbytes)
	}
	return &entry{
		Tensor: source.Tensor{Name: name, DType: dt, Shape: dims},
		begin:  int64(begin),
		end:    int64(end),
	}, nil
}

// Path returns the file's path (or the name given to NewReader).
func (f *File) Path() string { return f.path }

// Tensors lists the tensors in data order. The caller must not modify the
// result.
func (f *File) Tensors() []source.Tensor { return f.tensors }

// Has reports whether the file holds a tensor of that name.
func (f *File) Has(name string) bool { return f.byName[name] != nil }

// Metadata returns the header's __metadata__ (string values), or nil.
func (f *File) Metadata() map[string]any {
	if f.meta == nil {
		return nil
	}
	m := make(map[string]any, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

// StringMetadata returns the header's __metadata__ as stored, or nil. The
// caller must not modify the result.
func (f *File) StringMetadata() map[string]string { return f.meta }

// ReadRaw returns the tensor's bytes as stored (little-endian).
func (f *File) ReadRaw(name string) ([]byte, error) {
	e := f.byName[name]
	if e == nil {
		return nil, fmt.Errorf("%s: no tensor %q", f.path, name)
	}
	buf := make([]byte, e.end-e.begin)
	if len(buf) == 0 {
		return buf, nil
	}
	if _, err := f.r.ReadAt(buf, f.dataStart+e.begin); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: reading %d bytes: %w", f.path, name, len(buf), err)
	}
	return buf, nil
}

// ReadFloat32 reads a float tensor (F64, F32, F16 or BF16) and converts it
// to float32 (F64 rounds to nearest; the halves widen exactly). Integer and
// boolean tensors are refused: they are not weights, and a silent
// conversion would hide a mapping mistake.
func (f *File) ReadFloat32(name string) ([]float32, error) {
	e := f.byName[name]
	if e == nil {
		return nil, fmt.Errorf("%s: no tensor %q", f.path, name)
	}
	switch e.DType {
	case source.F64, source.F32, source.F16, source.BF16:
	default:
		return nil, fmt.Errorf("%s: tensor %q has dtype %s, not a float type; refusing to convert it to float32", f.path, name, e.DType)
	}
	raw, err := f.ReadRaw(name)
	if err != nil {
		return nil, err
	}
	return source.DecodeFloat32(e.DType, raw)
}

// Close closes the underlying file (when the File was made by Open).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}
