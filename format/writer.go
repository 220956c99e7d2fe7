package format

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/quant"
)

// TensorSpec is one tensor of a Writer's plan.
type TensorSpec struct {
	Name  string
	Type  quant.Type
	Shape []int
}

// CreateOptions controls Create.
type CreateOptions struct {
	// Force lets Commit replace an existing file at the destination.
	// Without it an existing destination is never overwritten.
	Force bool
}

// Writer streams a model file to disk one tensor at a time, so a
// conversion holds about one tensor in memory, not the model.
//
// The tensor table sits in the header, before the data, so the Writer is
// given every tensor's name, type and shape up front (the plan). It lays
// out the file from the plan, writes each tensor's bytes at its offset as
// WriteTensor is called (in any order), and at Commit writes the header with
// the checksums it gathered: checksums are fixed-width in the header, so the
// header's length is known from the start.
//
// Everything goes to a temporary file next to the destination; Commit syncs
// it, checks it with Verify and renames it into place, so the destination is
// either the previous file or a complete, verified new one. Abort (safe to
// defer; a no-op after Commit) removes the temporary file.
//
// WriteTensor may be called from several goroutines at once.
type Writer struct {
	path, tmp string
	force     bool
	f         *os.File

	mu      sync.Mutex
	hdr     Header
	hdrLen  int
	size    uint64
	byName  map[string]int
	state   []byte // per tensor: 0 to write, 1 writing, 2 written
	done    bool
	err     error // sticky: a failed write spoils the file
	missing int
}

// Create starts writing a model file at path with the header h (whose
// Tensors must be empty: the Writer fills them from plan). It checks the
// header and the plan, lays the file out, and creates the temporary file.
// When h.Provenance.Created is zero it is set to the current time; give a
// fixed time for byte-identical output.
func Create(path string, h Header, plan []TensorSpec, opts CreateOptions) (*Writer, error) {
	if len(h.Tensors) != 0 {
		return nil, fmt.Errorf("%s: the header's tensor table must be empty; the plan gives it", path)
	}
	if !opts.Force {
		if _, err := os.Lstat(path); err == nil {
			return nil, fmt.Errorf("%s: %w (overwriting needs Force)", path, fs.ErrExist)
		}
	}
	if h.Provenance.Created.IsZero() {
		h.Provenance.Created = time.Now()
	}
	h.Provenance.Created = h.Provenance.Created.UTC()
	h.Tensors = make([]TensorInfo, len(plan))
	for i, s := range plan {
		size, err := DataSize(s.Type, s.Shape)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, s.Name, err)
		}
		h.Tensors[i] = TensorInfo{Name: s.Name, Type: s.Type, Shape: slices.Clone(s.Shape), Size: size}
	}
	if err := checkHeader(&h); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The encoded length does not depend on offsets or checksums (fixed
	// width), so encode once to learn where the data starts.
	enc, err := encodeHeader(&h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pos := alignUp(uint64(PreambleSize + len(enc)))
	end := pos
	for i := range h.Tensors {
		t := &h.Tensors[i]
		t.Offset = pos
		end = pos + t.Size
		pos = alignUp(end)
	}
	if len(h.Tensors) == 0 {
		end = uint64(PreambleSize + len(enc))
	}
	w := &Writer{
		path:    path,
		force:   opts.Force,
		hdr:     h,
		hdrLen:  len(enc),
		size:    end,
		byName:  make(map[string]int, len(plan)),
		state:   make([]byte, len(plan)),
		missing: len(plan),
	}
	for i, t := range h.Tensors {
		w.byName[t.Name] = i
	}
	// ".NAME.*.tmp" beside the destination, registered so that SIGINT
	// and SIGTERM remove it (safeio.RemoveTempsOnSignal).
	w.f, err = safeio.CreateTemp(path)
	if err != nil {
		return nil, err
	}
	w.tmp = w.f.Name()
	return w, nil
}

// encodeHeader encodes h as msgpack with sorted map keys (deterministic) and
// checks it against the reader's limits.
func encodeHeader(h *Header) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("encoding the header: %w", err)
	}
	b := buf.Bytes()
	if len(b) > MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes, above the limit of %d", len(b), MaxHeaderSize)
	}
	if err := prescan(b); err != nil {
		return nil, fmt.Errorf("header beyond the reader's limits: %w", err)
	}
	return b, nil
}

// WriteTensor writes the named tensor's data: its bytes in the type's
// layout (little-endian values, GGML blocks for int8 and int4), exactly
// DataSize(type, shape) of them. Each planned tensor is written once.
func (w *Writer) WriteTensor(name string, data []byte) error {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return fmt.Errorf("%s: tensor %q: the writer is closed", w.path, name)
	}
	i, ok := w.byName[name]
	if !ok {
		w.mu.Unlock()
		return fmt.Errorf("%s: tensor %q: not in the plan", w.path, name)
	}
	t := w.hdr.Tensors[i]
	if w.state[i] != 0 {
		w.mu.Unlock()
		return fmt.Errorf("%s: tensor %q: written twice", w.path, name)
	}
	if uint64(len(data)) != t.Size {
		w.mu.Unlock()
		return fmt.Errorf("%s: tensor %q: %d bytes of data, but %s%v takes %d", w.path, name, len(data), t.Type, t.Shape, t.Size)
	}
	w.state[i] = 1
	w.mu.Unlock()

	sum := Checksum(data)
	_, err := w.f.WriteAt(data, int64(t.Offset))

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("%s: tensor %q: %w", w.path, name, err)
		if w.err == nil {
			w.err = err
		}
		return err
	}
	w.hdr.Tensors[i].Checksum = sum
	w.state[i] = 2
	w.missing--
	return nil
}

// Commit finishes the file: it writes the header, syncs, checks the whole
// file with Verify, and renames it over the destination (which must not
// exist, unless Force). On any failure the temporary file is removed and the
// destination is left as it was.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("%s: the writer is closed", w.path)
	}
	if err := w.commit(); err != nil {
		w.abort()
		return err
	}
	return nil
}

func (w *Writer) commit() error {
	if w.err != nil {
		return w.err
	}
	if w.missing > 0 {
		var names []string
		for i, s := range w.state {
			if s != 2 {
				names = append(names, fmt.Sprintf("%q", w.hdr.Tensors[i].Name))
				if len(names) == 5 {
					break
				}
			}
		}
		return fmt.Errorf("%s: %d planned tensors were not written, first %v", w.path, w.missing, names)
	}
	enc, err := encodeHeader(&w.hdr)
	if err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	if len(enc) != w.hdrLen {
		return fmt.Errorf("%s: header grew from %d to %d bytes after the checksums (a bug)", w.path, w.hdrLen, len(enc))
	}
	if _, err := w.f.WriteAt(append(preamble(enc), enc...), 0); err != nil {
		return fmt.Errorf("%s: writing the header: %w", w.path, err)
	}
	if err := w.f.Truncate(int64(w.size)); err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	if err := w.f.Chmod(0o644); err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("%s: %w", w.path, err)
	}
	if err := Verify(w.tmp); err != nil {
		return fmt.Errorf("%s: the written file does not verify: %w", w.path, err)
	}
	// Without Force, an existing destination is refused atomically
	// (link where the file system can); the folder is synced after.
	if err := safeio.Publish(w.tmp, w.path, w.force); err != nil {
		return err
	}
	w.done = true
	return nil
}

// Abort discards the file being written and removes the temporary file. It
// does nothing after Commit or a previous Abort, so it is safe to defer.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	return w.abort()
}

func (w *Writer) abort() error {
	w.done = true
	var errs []error
	if w.f != nil {
		errs = append(errs, w.f.Close())
		w.f = nil
	}
	if err := safeio.RemoveTemp(w.tmp); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: aborting: %w", w.path, err)
	}
	return nil
}
