// Package torchzip reads PyTorch checkpoints written by torch.save in the
// zip format (the default since torch 1.6): .pt, .pth and pytorch_model.bin
// files holding <archive>/data.pkl, one <archive>/data/<key> entry per
// storage, <archive>/version and, from newer torch, <archive>/byteorder.
//
// The pickle is run by a restricted unpickler written for this package: it
// implements the opcodes a state_dict pickle uses and only the globals a
// state_dict needs (collections.OrderedDict, torch's tensor and parameter
// rebuild functions, the storage classes and dtypes). Any other global
// (os.system, builtins.eval, ...) or opcode is refused by name, so loading
// a checkpoint never runs code from it. Hard limits bound the pickle's
// size, stack, MARK depth, memo, strings, nesting and the containers it
// builds, and what a view that repeats its storage's elements (a stride-0
// broadcast) may expand to.
//
// Every tensor found in the loaded object is exposed under its dotted path
// from the top: {"model": {"backbone.x": t}, "epoch": 3} gives
// "model.backbone.x" (the converter strips such wrappers); list and tuple
// items get their index. Scalars (int, float, str, bool) become Metadata
// under their dotted paths (e.g. "epoch": 3); other non-tensor values are
// ignored. A container reached twice (shared through the pickle memo) is
// walked once; a tensor reached twice is listed under both names.
// Tensor data is read on demand, one tensor at a time, straight from the
// zip entry (torch stores storages uncompressed, so reads are ReadAt
// calls). Non-contiguous views are materialised in row-major order by
// ReadRaw and ReadFloat32.
package torchzip

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/memmamba/memmamba/convert/source"
)

// Limits on the zip container.
const (
	// MaxEntries bounds the zip's entry count.
	MaxEntries = 1 << 20
	// MaxTensors bounds the number of tensors exposed.
	MaxTensors = 1 << 20
	// maxSmallEntry bounds version and byteorder.
	maxSmallEntry = 64
	// maxMetadata bounds the scalars kept as metadata.
	maxMetadata = 4096
	// MaxNameLen bounds a tensor's dotted name.
	MaxNameLen = 4096
	// MaxExpandedBytes bounds a tensor view that addresses some stored
	// elements more than once (a broadcast: torch.zeros(1).expand(n, m)
	// has stride 0), when read: the file holds only its storage, so
	// without a bound a few bytes could ask for any amount of memory. A
	// view that repeats nothing is bounded by the file itself.
	MaxExpandedBytes = 256 << 20
)

// elemSize is the size of an element of each dtype name.
var elemSize = map[string]int64{"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1}

// legacyMagic starts a legacy (non-zip) torch.save file: PROTO 2, then the
// magic number 0x1950a86a20f9469cfc6c as LONG1.
var legacyMagic = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")

// File is an open torch.save zip checkpoint. It implements source.Reader.
type File struct {
	path     string
	r        io.ReaderAt
	size     int64
	closer   io.Closer
	prefix   string
	storages map[string]*zip.File
	starts   map[string]int64 // data offsets of the storages in use
	tensors  []source.Tensor
	byName   map[string]*tensorVal
	meta     map[string]any
}

var _ source.Reader = (*File)(nil)

// Open opens a torch.save zip file, runs its pickle through the restricted
// unpickler and lists its tensors. Tensor data is read later, on demand.
func Open(path string) (*File, error) {
	tf, closer, err := source.OpenWith(path, NewReader)
	if err != nil {
		return nil, err
	}
	tf.closer = closer
	return tf, nil
}

// NewReader reads a torch.save zip held by r (size bytes); name is used in
// error messages and returned by Path. Close does not close r.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	f := &File{path: name, r: r, size: size}
	if err := f.load(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

func (f *File) load() error {
	head := make([]byte, len(legacyMagic))
	n, _ := f.r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, legacyMagic):
		return errors.New("legacy torch.save format (saved with _use_new_zipfile_serialization=False or torch < 1.6), which this reader does not support; " +
			"re-save it with a current torch: torch.save(torch.load(path), new_path)")
	case len(head) > 0 && head[0] == 0x80:
		return errors.New("a bare pickle, not a torch.save zip file; re-save it with torch.save (torch >= 1.6)")
	case !bytes.HasPrefix(head, []byte("PK")):
		if isTar(f.r) {
			return errors.New("legacy tar-format torch.save file, which this reader does not support; re-save it with a current torch")
		}
		return errors.New("not a torch.save zip file (no zip signature)")
	}
	zr, err := zip.NewReader(f.r, f.size)
	if err != nil {
		return fmt.Errorf("not a readable zip: %w", err)
	}
	if len(zr.File) > MaxEntries {
		return fmt.Errorf("%d zip entries exceed the limit of %d", len(zr.File), MaxEntries)
	}

	// Find <archive>/data.pkl; the archive folder's name varies.
	var pkl *zip.File
	torchScript := false
	for _, zf := range zr.File {
		dir, base, ok := strings.Cut(zf.Name, "/")
		if !ok {
			continue
		}
		switch base {
		case "data.pkl":
			if pkl != nil {
				return fmt.Errorf("two data.pkl entries (%s and %s)", pkl.Name, zf.Name)
			}
			pkl = zf
			f.prefix = dir + "/"
		case "constants.pkl":
			torchScript = true
		}
	}
	if pkl == nil {
		if torchScript {
			return errors.New("a TorchScript archive (torch.jit.save) without data.pkl; save the model's state_dict with torch.save instead")
		}
		return errors.New("no <archive>/data.pkl entry: not a torch.save zip file")
	}

	f.storages = map[string]*zip.File{}
	f.starts = map[string]int64{}
	for _, zf := range zr.File {
		rest, ok := strings.CutPrefix(zf.Name, f.prefix)
		if !ok {
			continue
		}
		if key, ok := strings.CutPrefix(rest, "data/"); ok && key != "" && !strings.Contains(key, "/") {
			if f.storages[key] != nil {
				return fmt.Errorf("zip entry %s appears twice", zf.Name)
			}
			f.storages[key] = zf
		}
		if rest == "byteorder" {
			b, err := readSmall(zf)
			if err != nil {
				return err
			}
			switch strings.TrimSpace(string(b)) {
			case "little":
			case "big":
				return fmt.Errorf("%s says the storages are big-endian; only little-endian checkpoints are supported (re-save it on a little-endian machine)", zf.Name)
			default:
				return fmt.Errorf("%s holds %q, want \"little\"", zf.Name, b)
			}
		}
		if rest == "version" {
			b, err := readSmall(zf)
			if err != nil {
				return err
			}
			if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || v < 1 || v > 100 {
				return fmt.Errorf("%s holds %q, not a format version", zf.Name, b)
			}
		}
	}

	if pkl.UncompressedSize64 > MaxPickleBytes {
		return fmt.Errorf("%s of %d bytes exceeds the %d-byte limit", pkl.Name, pkl.UncompressedSize64, MaxPickleBytes)
	}
	rc, err := pkl.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", pkl.Name, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, MaxPickleBytes+1))
	rc.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", pkl.Name, err)
	}
	if len(data) > MaxPickleBytes {
		return fmt.Errorf("%s exceeds the %d-byte limit", pkl.Name, MaxPickleBytes)
	}
	root, err := unpickle(data, f.persistentLoad)
	if err != nil {
		var rg *RefusedGlobalError
		if errors.As(err, &rg) {
			return err
		}
		return fmt.Errorf("%s: %w", pkl.Name, err)
	}

	f.byName = map[string]*tensorVal{}
	w := walker{f: f, seen: map[any]bool{}}
	if err := w.walk(root, "", 0); err != nil {
		return err
	}
	if len(f.tensors) == 0 {
		return fmt.Errorf("holds no tensors (the pickle is a %s)", typeName(root))
	}
	return nil
}

// isTar reports whether r looks like a tar archive (the ustar magic at 257).
func isTar(r io.ReaderAt) bool {
	b := make([]byte, 5)
	n, _ := r.ReadAt(b, 257)
	return n == 5 && string(b) == "ustar"
}

// readSmall reads a zip entry of at most maxSmallEntry bytes.
func readSmall(zf *zip.File) ([]byte, error) {
	if zf.UncompressedSize64 > maxSmallEntry {
		return nil, fmt.Errorf("%s of %d bytes is larger than expected", zf.Name, zf.UncompressedSize64)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSmallEntry+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	if len(b) > maxSmallEntry {
		return nil, fmt.Errorf("%s is larger than expected", zf.Name)
	}
	return b, nil
}

// persistentLoad resolves a storage persistent id, ('storage',
// storage_type, key, location, numel), to its zip entry, checking the entry
// holds numel elements of the storage's dtype.
func (f *File) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*pyTuple)
	if !ok || len(t.items) != 5 {
		return nil, fmt.Errorf("persistent id is a %s, not a ('storage', type, key, location, numel) tuple", typeName(pid))
	}
	if tag, _ := t.items[0].(string); tag != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v, want 'storage'", t.items[0])
	}
	g, ok := t.items[1].(pyGlobal)
	if !ok || g.module != "torch" || dtypes[g.name] == "" {
		return nil, fmt.Errorf("storage type is a %s, not a torch storage class or dtype", typeName(t.items[1]))
	}
	key, ok := t.items[2].(string)
	if !ok {
		return nil, fmt.Errorf("storage key is a %s, not a string", typeName(t.items[2]))
	}
	numel, ok := t.items[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %q: bad element count %v", key, t.items[4])
	}
	zf := f.storages[key]
	if zf == nil {
		return nil, fmt.Errorf("storage %q: no zip entry %sdata/%s", key, f.prefix, key)
	}
	if _, ok := f.starts[key]; !ok {
		// torch stores storages uncompressed; requiring that keeps every
		// read a bounded ReadAt inside the file (a compressed entry could
		// claim any size).
		if zf.Method != zip.Store || zf.CompressedSize64 != zf.UncompressedSize64 {
			return nil, fmt.Errorf("storage %q: zip entry %s is compressed; torch.save stores storages uncompressed", key, zf.Name)
		}
		start, err := zf.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("storage %q: zip entry %s: %w", key, zf.Name, err)
		}
		if start < 0 || start > f.size || zf.UncompressedSize64 > uint64(f.size-start) {
			return nil, fmt.Errorf("storage %q: zip entry %s runs past the end of the file", key, zf.Name)
		}
		f.starts[key] = start
	}
	dt := dtypes[g.name]
	es := elemSize[dt]
	if numel > math.MaxInt64/es || uint64(numel*es) > zf.UncompressedSize64 {
		return nil, fmt.Errorf("storage %q: %d elements of %s do not fit in its %d-byte entry", key, numel, dt, zf.UncompressedSize64)
	}
	return &storageRef{key: key, dtype: dt, numel: numel}, nil
}

// walker collects the tensors and scalars of the loaded object.
type walker struct {
	f    *File
	seen map[any]bool // containers already walked (shared or cyclic ones)
}

func join(prefix, key string) (string, error) {
	if len(prefix)+1+len(key) > MaxNameLen {
		if len(prefix) > 60 {
			prefix = prefix[:60] + "..."
		}
		return "", fmt.Errorf("%q: a name below it is longer than %d bytes", prefix, MaxNameLen)
	}
	if prefix == "" {
		return key, nil
	}
	return prefix + "." + key, nil
}

// keyString formats a dict key as a path component.
func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case int64:
		return strconv.FormatInt(k, 10)
	case bool:
		return strconv.FormatBool(k)
	case nil:
		return "None"
	case float64:
		return strconv.FormatFloat(k, 'g', -1, 64)
	}
	return fmt.Sprintf("<%s>", typeName(k))
}

func (w *walker) walk(v any, path string, depth int) error {
	if depth > MaxDepth {
		if len(path) > 60 {
			path = path[:60] + "..."
		}
		return fmt.Errorf("%q: objects nested deeper than %d levels", path, MaxDepth)
	}
	switch v := v.(type) {
	case *tensorVal:
		name := path
		if name == "" {
			name = "tensor"
		}
		if w.f.byName[name] != nil {
			return fmt.Errorf("tensor %q appears twice (two paths give the same dotted name)", name)
		}
		if len(w.f.tensors) >= MaxTensors {
			return fmt.Errorf("more than %d tensors", MaxTensors)
		}
		if err := v.checkExpansion(); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		w.f.byName[name] = v
		w.f.tensors = append(w.f.tensors, source.Tensor{Name: name, DType: source.DType(v.storage.dtype), Shape: v.shape})
		return nil
	case *pyDict:
		if w.seen[v] {
			return nil
		}
		w.seen[v] = true
		for i, k := range v.keys {
			p, err := join(path, keyString(k))
			if err != nil {
				return err
			}
			if err := w.walk(v.vals[i], p, depth+1); err != nil {
				return err
			}
		}
	case *pyList:
		return w.walkItems(v, v.items, path, depth)
	case *pyTuple:
		return w.walkItems(v, v.items, path, depth)
	case int64, float64, string, bool:
		if path != "" && len(w.f.meta) < maxMetadata {
			if w.f.meta == nil {
				w.f.meta = map[string]any{}
			}
			w.f.meta[path] = v
		}
	}
	return nil
}

// walkItems walks the items of the list or tuple c (once, however many
// paths reach it) under path.0, path.1, ...
func (w *walker) walkItems(c any, items []any, path string, depth int) error {
	if w.seen[c] {
		return nil
	}
	w.seen[c] = true
	for i, it := range items {
		p, err := join(path, strconv.Itoa(i))
		if err != nil {
			return err
		}
		if err := w.walk(it, p, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the file's path (or the name given to NewReader).
func (f *File) Path() string { return f.path }

// Tensors lists the tensors in pickle order. The caller must not modify
// the result.
func (f *File) Tensors() []source.Tensor { return f.tensors }

// Metadata returns the scalars found in the checkpoint's dicts (e.g.
// "epoch": 3) under their dotted paths, or nil.
func (f *File) Metadata() map[string]any { return f.meta }

// Close closes the underlying file (when the File was made by Open).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}

// ReadRaw returns the tensor's elements, little-endian as stored, in
// row-major order of its shape (a non-contiguous view is gathered).
func (f *File) ReadRaw(name string) ([]byte, error) {
	t := f.byName[name]
	if t == nil {
		return nil, fmt.Errorf("%s: no tensor %q", f.path, name)
	}
	b, err := f.readTensor(t)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.path, name, err)
	}
	return b, nil
}

// ReadFloat32 reads a float tensor (F64, F32, F16 or BF16) as float32.
// Integer and boolean tensors are refused by name.
func (f *File) ReadFloat32(name string) ([]float32, error) {
	t := f.byName[name]
	if t == nil {
		return nil, fmt.Errorf("%s: no tensor %q", f.path, name)
	}
	switch dt := source.DType(t.storage.dtype); dt {
	case source.F64, source.F32, source.F16, source.BF16:
	default:
		return nil, fmt.Errorf("%s: tensor %q has dtype %s, not a float type; refusing to convert it to float32", f.path, name, dt)
	}
	raw, err := f.ReadRaw(name)
	if err != nil {
		return nil, err
	}
	v, err := source.DecodeFloat32(source.DType(t.storage.dtype), raw)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.path, name, err)
	}
	return v, nil
}

// readTensor reads the elements a view addresses. Bounds were checked when
// the view was built (every addressed element is inside the storage, and
// the storage inside its entry).
func (f *File) readTensor(t *tensorVal) ([]byte, error) {
	es := elemSize[t.storage.dtype]
	n := t.numel()
	if n == 0 {
		return []byte{}, nil
	}
	if t.contiguous() {
		return f.readEntry(t.storage.key, t.offset*es, n*es)
	}
	// Gather a strided view: read the span it touches (at most the
	// storage), then copy it row by row in row-major order. A view that
	// repeats elements was held to MaxExpandedBytes when the file was
	// opened.
	span, err := f.readEntry(t.storage.key, t.offset*es, t.span()*es)
	if err != nil {
		return nil, err
	}
	return gather(span, t.shape, t.stride, es), nil
}

// gather copies the elements of es bytes that a view of shape and stride
// (in elements) addresses in span into a new row-major buffer: a run at a
// time where the last dimension is contiguous, an element at a time
// otherwise.
func gather(span []byte, shape []int, stride []int64, es int64) []byte {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	out := make([]byte, 0, n*es)
	r := len(shape)
	if r == 0 {
		return append(out, span[:es]...)
	}
	cols, cs := int64(shape[r-1]), stride[r-1]
	idx := make([]int, r-1)
	for {
		var off int64
		for i, j := range idx {
			off += int64(j) * stride[i]
		}
		if cs == 1 {
			out = append(out, span[off*es:(off+cols)*es]...)
		} else {
			for c := int64(0); c < cols; c++ {
				e := (off + c*cs) * es
				out = append(out, span[e:e+es]...)
			}
		}
		k := len(idx) - 1
		for k >= 0 {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
			k--
		}
		if k < 0 {
			return out
		}
	}
}

// span is the number of storage elements from the view's first addressed
// element to its last (the view is not empty).
func (t *tensorVal) span() int64 {
	last := t.offset
	for i, d := range t.shape {
		last += int64(d-1) * t.stride[i]
	}
	return last - t.offset + 1
}

// checkExpansion refuses a view that addresses stored elements more than
// once (more elements than its span of the storage) and would take more
// than MaxExpandedBytes when read.
func (t *tensorVal) checkExpansion() error {
	n := t.numel()
	if n == 0 {
		return nil
	}
	es := elemSize[t.storage.dtype]
	span := t.span()
	if n <= span || n <= MaxExpandedBytes/es {
		return nil
	}
	stored := fmt.Sprintf("%d stored elements", span)
	if span == 1 {
		stored = "1 stored element"
	}
	return fmt.Errorf("a view of size %v and stride %v repeats its storage's elements: %s would expand to %d elements of %s (%d bytes each), "+
		"above the budget of %d bytes for expanded (broadcast) tensors; save it with .contiguous()",
		t.shape, t.stride, stored, n, t.storage.dtype, es, int64(MaxExpandedBytes))
}

// readEntry reads n bytes at off of a storage entry with one ReadAt on the
// file (persistentLoad checked the entry is stored uncompressed and lies
// inside the file).
func (f *File) readEntry(key string, off, n int64) ([]byte, error) {
	zf := f.storages[key]
	if off < 0 || n < 0 || off > math.MaxInt64-n || uint64(off+n) > zf.UncompressedSize64 {
		return nil, fmt.Errorf("bytes %d..%d are outside %s", off, off+n, zf.Name)
	}
	buf := make([]byte, n)
	if _, err := f.r.ReadAt(buf, f.starts[key]+off); err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	return buf, nil
}
