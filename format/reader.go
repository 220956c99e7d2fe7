package format

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/memmamba/memmamba/quant"
)

// OpenOptions controls Open.
type OpenOptions struct {
	// VerifyChecksums checks every tensor's CRC-32C at open, which reads
	// the whole file. The header's checksum is always checked.
	VerifyChecksums bool
}

// Tensor is one tensor of an open file.
type Tensor struct {
	Name  string
	Type  quant.Type
	Shape []int
	// Data is the tensor's bytes in place in the file's mapping: read-only
	// (writing to it faults), valid until File.Close, 64-byte aligned in
	// memory when the file was opened with Open. Its length is exactly
	// DataSize(Type, Shape); its capacity is the same.
	Data []byte
	// Checksum is the CRC-32C the file records for Data.
	Checksum uint32
}

// File is an open model file.
type File struct {
	// Name is the path or the name given to OpenBytes, used in errors.
	Name string
	// Major and Minor are the file's format version.
	Major, Minor int
	Header       Header

	data    []byte
	unmap   func() error
	tensors []Tensor
	byName  map[string]int
}

// Open opens and checks the model file at path and maps it into memory
// (where the platform has mmap; elsewhere it reads the file). The tensors'
// Data slice the mapping, so opening costs about the header, whatever the
// model's size, unless opts.VerifyChecksums asks to read everything.
func Open(path string, opts OpenOptions) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	f, err := OpenBytes(path, data)
	if err != nil {
		unmap()
		return nil, err
	}
	f.unmap = unmap
	if opts.VerifyChecksums {
		if err := f.VerifyChecksums(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// OpenBytes parses a model file held in b, named name in errors. The
// tensors' Data slice b, which must not change while the File is used.
// Tensor checksums are not checked; call VerifyChecksums for that.
func OpenBytes(name string, b []byte) (*File, error) {
	f, err := parse(name, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// Verify checks the model file at path completely: everything Open checks,
// every tensor's checksum, and that the bytes between tensors are zero. It
// reports every damaged tensor, not only the first.
func Verify(path string) error {
	f, err := Open(path, OpenOptions{})
	if err != nil {
		return err
	}
	defer f.Close()
	return errors.Join(f.verifyChecksums(f.unmap != nil), f.checkPadding())
}

// VerifyModel is Verify for a file that is to run as a model: it also
// runs CheckModel, the check engine.Open makes of the config against the
// tensor table whatever the tensors are named, so that `mmconvert verify`
// refuses what engine.Open refuses (less the memory check, which depends
// on the machine).
func VerifyModel(path string) error {
	if err := Verify(path); err != nil {
		return err
	}
	f, err := Open(path, OpenOptions{})
	if err != nil {
		return err
	}
	defer f.Close()
	return f.CheckModel()
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (Tensor, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Tensor{}, false
	}
	return f.tensors[i], true
}

// Tensors returns every tensor in table order. The slice is the caller's.
func (f *File) Tensors() []Tensor { return slices.Clone(f.tensors) }

// Size returns the file's size in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// Close releases the mapping; the tensors' Data must not be used after it.
// Closing twice is harmless.
func (f *File) Close() error {
	f.tensors, f.byName, f.data = nil, nil, nil
	if f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	if err := u(); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return nil
}

// VerifyChecksums checks every tensor's data against its CRC-32C and reports
// each one that does not match.
func (f *File) VerifyChecksums() error { return f.verifyChecksums(false) }

// verifyChecksums checks every tensor; drop releases each tensor's pages
// from the resident set once checked (for a mapped file).
func (f *File) verifyChecksums(drop bool) error {
	var errs []error
	for _, t := range f.tensors {
		if got := Checksum(t.Data); got != t.Checksum {
			errs = append(errs, fmt.Errorf("%s: tensor %q: %w: data has CRC-32C %08x, the header records %08x", f.Name, t.Name, ErrChecksum, got, t.Checksum))
		}
		if drop {
			DropPages(t.Data)
		}
	}
	return errors.Join(errs...)
}

// checkPadding checks that every byte after the header not in a tensor is
// zero, as the Writer leaves it.
func (f *File) checkPadding() error {
	idx := make([]int, len(f.tensors))
	for i := range idx {
		idx[i] = i
	}
	info := f.Header.Tensors
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(info[a].Offset, info[b].Offset) })
	pos := uint64(PreambleSize) + binary.LittleEndian.Uint64(f.data[16:24])
	check := func(end uint64) error {
		if i := bytes.IndexFunc(f.data[pos:end], func(r rune) bool { return r != 0 }); i >= 0 {
			return fmt.Errorf("%s: %w: padding byte at offset %d is not zero", f.Name, ErrChecksum, pos+uint64(i))
		}
		return nil
	}
	var errs []error
	for _, i := range idx {
		if info[i].Offset > pos {
			if err := check(info[i].Offset); err != nil {
				errs = append(errs, err)
			}
		}
		pos = max(pos, info[i].Offset+info[i].Size)
	}
	if err := check(uint64(len(f.data))); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parse checks and decodes b. Errors do not name the file; OpenBytes adds it.
func parse(name string, b []byte) (*File, error) {
	if len(b) < len(Magic) || string(b[:len(Magic)]) != Magic {
		n := min(len(b), len(Magic))
		return nil, fmt.Errorf("%w: starts with %q, not %q", ErrNotModel, b[:n], Magic)
	}
	if len(b) < PreambleSize {
		return nil, fmt.Errorf("%w: truncated: %d bytes, shorter than the %d-byte preamble", ErrInvalid, len(b), PreambleSize)
	}
	major := int(binary.LittleEndian.Uint16(b[8:]))
	minor := int(binary.LittleEndian.Uint16(b[10:]))
	if major != MajorVersion {
		hint := "it is older than any version this build reads"
		if major > MajorVersion {
			hint = "it was written by a newer converter; use a newer build"
		}
		return nil, fmt.Errorf("%w: the file is format version %d.%d; this build reads version %d.x (up to %d.%d); %s",
			ErrVersion, major, minor, MajorVersion, MajorVersion, MinorVersion, hint)
	}
	hlen := binary.LittleEndian.Uint64(b[16:])
	if hlen > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes, above the limit of %d", ErrInvalid, hlen, MaxHeaderSize)
	}
	if hlen > uint64(len(b)-PreambleSize) {
		return nil, fmt.Errorf("%w: truncated: the header needs %d bytes, the file has %d", ErrInvalid, PreambleSize+hlen, len(b))
	}
	hdr := b[PreambleSize : PreambleSize+hlen]
	if got, want := headerChecksum(b[:PreambleSize], hdr), binary.LittleEndian.Uint32(b[24:]); got != want {
		return nil, fmt.Errorf("%w: header has CRC-32C %08x, the preamble records %08x", ErrChecksum, got, want)
	}
	if err := prescan(hdr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	f := &File{Name: name, Major: major, Minor: minor, data: b}
	if err := decodeHeader(hdr, &f.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalid, err)
	}
	h := &f.Header
	if !h.Provenance.Created.IsZero() {
		h.Provenance.Created = h.Provenance.Created.UTC()
	}
	if err := checkHeader(h); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := checkLayout(h.Tensors, PreambleSize+hlen, uint64(len(b))); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f.tensors = make([]Tensor, len(h.Tensors))
	f.byName = make(map[string]int, len(h.Tensors))
	for i, ti := range h.Tensors {
		end := ti.Offset + ti.Size
		f.tensors[i] = Tensor{
			Name:     ti.Name,
			Type:     ti.Type,
			Shape:    slices.Clip(ti.Shape),
			Data:     b[ti.Offset:end:end],
			Checksum: ti.Checksum,
		}
		f.byName[ti.Name] = i
	}
	return f, nil
}

// decodeHeader decodes a prescanned header. Unknown keys are skipped. A
// panic inside the msgpack decoder (none is known) becomes an error, as a
// last line of defence for input we do not control.
func decodeHeader(hdr []byte, h *Header) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("msgpack decoder failed: %v", r)
		}
	}()
	d := msgpack.NewDecoder(bytes.NewReader(hdr))
	return d.Decode(h)
}

// checkLayout checks where the tensors lie: each aligned, after the header
// (which ends at dataStart), inside the file, and no two overlapping. The
// sizes were checked by checkHeader.
func checkLayout(ts []TensorInfo, dataStart, fileSize uint64) error {
	for _, t := range ts {
		switch {
		case t.Offset%Alignment != 0:
			return fmt.Errorf("tensor %q: offset %d is not a multiple of %d", t.Name, t.Offset, Alignment)
		case t.Offset < dataStart:
			return fmt.Errorf("tensor %q: offset %d lies inside the header, which ends at %d", t.Name, t.Offset, dataStart)
		case t.Offset > fileSize || t.Size > fileSize-t.Offset:
			return fmt.Errorf("tensor %q: data [%d, +%d) runs past the end of the file (%d bytes): truncated?", t.Name, t.Offset, t.Size, fileSize)
		}
	}
	idx := make([]int, 0, len(ts))
	for i, t := range ts {
		if t.Size > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(ts[a].Offset, ts[b].Offset) })
	for k := 1; k < len(idx); k++ {
		p, c := ts[idx[k-1]], ts[idx[k]]
		if p.Offset+p.Size > c.Offset {
			return fmt.Errorf("tensor %q: data [%d, +%d) overlaps tensor %q at [%d, +%d)", c.Name, c.Offset, c.Size, p.Name, p.Offset, p.Size)
		}
	}
	return nil
}
