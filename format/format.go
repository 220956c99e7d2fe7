// Package format is the project's own model file: one self-contained file
// holding a model's configuration, its tokenizer, where it came from, and
// every tensor, laid out so that the runtime can memory-map the file and use
// the weights in place, without copying or decoding them at load time.
//
// The converter (mmconvert) writes it with a streaming Writer (Create,
// WriteTensor, Commit), which holds one tensor at a time; the runtime (mmrun)
// reads it with Open. The byte layout and the versioning rules are in
// README.md next to this file.
//
// Files are input we do not control, so the reader treats them as hostile:
// the header's length is checked against a hard limit and the file size
// before it is decoded, the msgpack structure is checked (lengths against the
// bytes that remain, counts against limits) before anything is allocated for
// it, and every tensor's offset, size, shape and type is checked with
// overflow-free arithmetic. Any file Open accepts has every tensor's Data
// inside the file, of exactly the size its type and shape call for, aligned
// to 64 bytes from the file start, and not overlapping another tensor.
package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/quant"
)

// Magic is the first 8 bytes of every model file.
const Magic = "MEMMAMBA"

// Versions this build writes and reads. A reader accepts every file of its
// major version, whatever the minor: minor versions only add (header keys
// that old readers skip). A new major version is a break: old readers refuse
// the file and say so.
const (
	MajorVersion = 1
	MinorVersion = 0
)

// Alignment is the alignment, in bytes from the file start, of every
// tensor's data. 64 is a cache line and a multiple of every SIMD vector the
// kernels load; a memory map starts on a page, so the alignment holds in
// memory too.
const Alignment = 64

// PreambleSize is the size of the fixed part before the msgpack header.
const PreambleSize = 32

// Hard limits on what a reader accepts. They are far above any real model
// and low enough that a hostile file cannot make the reader allocate much.
const (
	// MaxHeaderSize bounds the msgpack header (config, tokenizer JSON,
	// tensor table, provenance, metadata).
	MaxHeaderSize = 64 << 20
	// MaxTensors bounds the tensor table.
	MaxTensors = 1 << 16
	// MaxRank bounds a tensor's number of dimensions.
	MaxRank = 4
	// MaxDim bounds each dimension.
	MaxDim = 1 << 40
	// MaxNameLen bounds a tensor's name in bytes.
	MaxNameLen = 1024
	// MaxStringLen bounds every msgpack string in the header (names,
	// metadata values, paths); the tokenizer JSON is binary and bounded
	// by MaxHeaderSize only.
	MaxStringLen = 1 << 20
	// maxElements bounds the total number of array and map elements in the
	// header, so decoding allocates at most a few tens of MiB.
	maxElements = 1 << 22
	// maxDepth bounds the nesting of msgpack arrays and maps.
	maxDepth = 16
)

// Tokenizer kinds.
const (
	// TokenizerBytes is the byte-level tokenizer: token id = byte value.
	TokenizerBytes = "bytes"
	// TokenizerHFBPE is a Hugging Face byte-level BPE tokenizer.json.
	TokenizerHFBPE = "hf-bpe"
)

// Errors that callers may test with errors.Is. Every error also names the
// file and, where one is at fault, the tensor.
var (
	// ErrNotModel: the file does not start with Magic.
	ErrNotModel = errors.New("not a memmamba model file")
	// ErrVersion: the file's major version is not one this build reads.
	ErrVersion = errors.New("unsupported model file version")
	// ErrChecksum: a checksum does not match the bytes it covers.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrInvalid: the file is truncated or its header is damaged or lies.
	ErrInvalid = errors.New("invalid model file")
)

// castagnoli is the CRC-32C table. CRC-32C is what the file's checksums use:
// Go's hash/crc32 computes it with the CPU's CRC instructions (SSE4.2 on
// amd64, CRC32 on arm64) at many GB/s, so verifying a whole model costs about
// as much as reading it, and 32 bits catch the accidental damage checksums
// are for (bit flips, truncated or mixed-up copies) with odds of 2^-32 of a
// miss. It is not a defence against deliberate tampering; a sha256 of the
// whole file is, and the reader never trusts the header anyway.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b, the checksum the file
// stores for each tensor's data.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Header is the decoded msgpack header. Keys are the msgpack tags; a reader
// skips keys it does not know, so later minor versions may add some.
type Header struct {
	Config     arch.Config `msgpack:"config"`
	Tokenizer  Tokenizer   `msgpack:"tokenizer"`
	Provenance Provenance  `msgpack:"provenance"`
	// Metadata is free-form; the writer stores it with sorted keys.
	Metadata map[string]string `msgpack:"metadata,omitempty"`
	// Tensors is the tensor table, in file order. The Writer fills it in.
	Tensors []TensorInfo `msgpack:"tensors"`
}

// Tokenizer is the model's tokenizer, carried in the file so the runtime
// needs nothing else.
type Tokenizer struct {
	// Kind is TokenizerBytes or TokenizerHFBPE.
	Kind string `msgpack:"kind"`
	// JSON is the tokenizer.json text when Kind is TokenizerHFBPE, empty
	// otherwise.
	JSON []byte `msgpack:"json,omitempty"`
}

// Provenance records where a file came from.
type Provenance struct {
	Sources []SourceFile `msgpack:"sources"`
	// Converter is the converter's name and version.
	Converter string `msgpack:"converter"`
	// Created is the creation time; the Writer sets it to now when zero.
	// Give a fixed time for byte-identical output.
	Created time.Time `msgpack:"created"`
	// Synthetic marks a model with random weights (tests, benchmarks).
	Synthetic bool `msgpack:"synthetic"`
}

// SourceFile is one input file of the conversion.
type SourceFile struct {
	Path string `msgpack:"path"`
	// SHA256 is the file's sha256 in lowercase hex (64 characters).
	SHA256 string `msgpack:"sha256"`
}

// TensorInfo is one entry of the tensor table. Offset, Size and Checksum are
// fixed-width integers in the msgpack encoding (uint64, uint64, uint32), so
// the header's length does not depend on their values; the Writer relies on
// it to rewrite the header in place once the checksums are known.
type TensorInfo struct {
	Name  string     `msgpack:"name"`
	Type  quant.Type `msgpack:"type"`
	Shape []int      `msgpack:"shape"`
	// Offset is from the start of the file, a multiple of Alignment.
	Offset uint64 `msgpack:"offset"`
	// Size is DataSize(Type, Shape).
	Size uint64 `msgpack:"size"`
	// Checksum is the CRC-32C of the data.
	Checksum uint32 `msgpack:"crc32c"`
}

// DataSize returns the bytes a tensor of type t and shape takes:
// t.RowBytes(last dim) times the product of the other dims (a scalar, rank
// 0, is one value). It fails for an unknown type, a rank above MaxRank, a
// negative or too large dimension, a last dim that is not whole blocks of t,
// or a size that overflows.
func DataSize(t quant.Type, shape []int) (uint64, error) {
	if !t.Valid() {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if len(shape) > MaxRank {
		return 0, fmt.Errorf("rank %d is above the limit of %d", len(shape), MaxRank)
	}
	for i, d := range shape {
		if d < 0 || int64(d) > MaxDim {
			return 0, fmt.Errorf("dimension %d is %d, outside [0, %d]", i, d, int64(MaxDim))
		}
	}
	last := 1
	if len(shape) > 0 {
		last = shape[len(shape)-1]
	}
	row, err := t.RowBytes(last)
	if err != nil {
		return 0, fmt.Errorf("shape %v: %w", shape, err)
	}
	const maxSize = 1 << 62
	size := uint64(row)
	for _, d := range shape[:max(len(shape)-1, 0)] {
		if d != 0 && size > maxSize/uint64(d) {
			return 0, fmt.Errorf("shape %v of %s overflows", shape, t)
		}
		size *= uint64(d)
	}
	return size, nil
}

// alignUp rounds n up to a multiple of Alignment.
func alignUp(n uint64) uint64 { return (n + Alignment - 1) &^ (Alignment - 1) }

// checkHeader checks everything in h that does not depend on where the
// tensors lie: tokenizer, config, provenance, and each entry's name, type,
// shape and size, and that names are unique. The Writer runs it on the plan
// and the reader on the file.
func checkHeader(h *Header) error {
	var errs []error
	switch h.Tokenizer.Kind {
	case TokenizerBytes:
		if len(h.Tokenizer.JSON) != 0 {
			errs = append(errs, fmt.Errorf("tokenizer: kind %q carries %d bytes of JSON; it should carry none", TokenizerBytes, len(h.Tokenizer.JSON)))
		}
	case TokenizerHFBPE:
		if len(h.Tokenizer.JSON) == 0 {
			errs = append(errs, fmt.Errorf("tokenizer: kind %q without its tokenizer.json", TokenizerHFBPE))
		}
	default:
		errs = append(errs, fmt.Errorf("tokenizer: unknown kind %q (want %q or %q)", h.Tokenizer.Kind, TokenizerBytes, TokenizerHFBPE))
	}
	if err := checkConfig(h); err != nil {
		errs = append(errs, err)
	}
	for i, s := range h.Provenance.Sources {
		if len(s.SHA256) != 64 || strings.Trim(s.SHA256, "0123456789abcdef") != "" {
			errs = append(errs, fmt.Errorf("provenance: source %d (%q): sha256 %q is not 64 lowercase hex digits", i, s.Path, s.SHA256))
		}
	}
	if len(h.Tensors) > MaxTensors {
		errs = append(errs, fmt.Errorf("%d tensors, above the limit of %d", len(h.Tensors), MaxTensors))
		return errors.Join(errs...)
	}
	seen := make(map[string]int, len(h.Tensors))
	for i := range h.Tensors {
		ti := &h.Tensors[i]
		if err := checkName(ti.Name); err != nil {
			errs = append(errs, fmt.Errorf("tensor %d: %w", i, err))
			continue
		}
		if j, dup := seen[ti.Name]; dup {
			errs = append(errs, fmt.Errorf("tensor %q: listed twice (entries %d and %d)", ti.Name, j, i))
			continue
		}
		seen[ti.Name] = i
		size, err := DataSize(ti.Type, ti.Shape)
		if err != nil {
			errs = append(errs, fmt.Errorf("tensor %q: %w", ti.Name, err))
			continue
		}
		if ti.Size != size {
			errs = append(errs, fmt.Errorf("tensor %q: size %d does not match %s%v, which takes %d bytes", ti.Name, ti.Size, ti.Type, ti.Shape, size))
		}
		if len(errs) > 20 {
			errs = append(errs, errors.New("too many errors"))
			break
		}
	}
	return errors.Join(errs...)
}

// checkConfig checks the header's configuration: its sizes within their
// limits and, where the tensor table holds a model's weights (any tensor
// named "backbone.*"), against them: as many layers as the config counts
// (compared before anything is built per layer) and every shape the config
// gives. A table without such names (a container that is not a model)
// gets only the limits.
func checkConfig(h *Header) error {
	var held map[string][]int
	for _, t := range h.Tensors {
		if strings.HasPrefix(t.Name, "backbone.") {
			held = make(map[string][]int, len(h.Tensors))
			break
		}
	}
	if held == nil {
		return h.Config.Validate()
	}
	for _, t := range h.Tensors {
		held[t.Name] = t.Shape
	}
	return h.Config.CheckHeld(held)
}

// CheckModel checks the header's configuration against the tensor table
// as a model's weights, whatever the tensors are named: the table must hold
// every layer the configuration counts and give each weight it holds the
// configuration's shape (arch.Config.CheckHeld). Open checks this only for
// tables that name a model's weights (see checkConfig); engine.Open
// checks every file, and `mmconvert verify` should too.
func (f *File) CheckModel() error {
	h := &f.Header
	held := make(map[string][]int, len(h.Tensors))
	for _, t := range h.Tensors {
		held[t.Name] = t.Shape
	}
	if err := h.Config.CheckHeld(held); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return nil
}

// checkName checks a tensor name: 1 to MaxNameLen bytes of UTF-8, no NUL.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes, above the limit of %d", len(name), MaxNameLen)
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q is not valid UTF-8 without NUL", name)
	}
	return nil
}

// headerChecksum is the CRC-32C of the preamble (the 32 bytes, less the
// checksum's own 4 at 24..28) followed by the header, so a flipped bit
// anywhere before the data is caught.
func headerChecksum(pre, hdr []byte) uint32 {
	c := crc32.Update(0, castagnoli, pre[:24])
	c = crc32.Update(c, castagnoli, pre[28:PreambleSize])
	return crc32.Update(c, castagnoli, hdr)
}

// preamble returns the 32-byte preamble for the header hdr, with
// its checksum (see README.md).
func preamble(hdr []byte) []byte {
	p := make([]byte, PreambleSize)
	copy(p, Magic)
	binary.LittleEndian.PutUint16(p[8:], MajorVersion)
	binary.LittleEndian.PutUint16(p[10:], MinorVersion)
	binary.LittleEndian.PutUint64(p[16:], uint64(len(hdr)))
	binary.LittleEndian.PutUint32(p[24:], headerChecksum(p, hdr))
	return p
}
