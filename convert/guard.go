package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/memmamba/memmamba/convert/safetensors"
	"github.com/memmamba/memmamba/internal/modeltok"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/quant"
)

// checkWrite runs the checks that come before any tensor is converted:
// the output is none of the input's files (safeio.NotInput), and the
// tokenizer the model file will carry loads exactly as mmrun loads it
// (internal/modeltok), so a model file never carries one mmrun refuses.
func (in *Input) checkWrite(output string) error {
	if err := safeio.NotInput(output, in.Files()...); err != nil {
		return err
	}
	if _, err := modeltok.Load(in.Tokenizer, in.Config.VocabSize); err != nil {
		msg := strings.TrimPrefix(err.Error(), "tokenizer.json: ") // the path names it
		return fmt.Errorf("%s: %s (mmrun would refuse this tokenizer)", in.tokenizerSource(), msg)
	}
	return nil
}

// Files returns the paths of the files the input was read from (weights,
// shards, index, config.json, tokenizer.json), so that an output can be
// checked against each of them (safeio.NotInput).
func (in *Input) Files() []string {
	var files []string
	dir := ""
	for _, r := range in.readers {
		files = append(files, r.Path())
		if dir == "" {
			dir = filepath.Dir(r.Path())
		}
		if sh, ok := r.(*safetensors.Sharded); ok {
			for _, f := range sh.Shards() {
				files = append(files, f.Path())
			}
		}
	}
	if dir != "" && in.Form != "mmq" {
		for _, s := range in.Sources {
			files = append(files, filepath.Join(dir, s.Path))
		}
	}
	return files
}

// tokenizerSource names where the input's tokenizer came from, for errors.
func (in *Input) tokenizerSource() string {
	for _, f := range in.Files() {
		if filepath.Base(f) == "tokenizer.json" {
			return f
		}
	}
	return in.describe() + ": tokenizer"
}

// NonFiniteError is a NaN or infinite weight (or block scale), refused
// unless Policy.AllowNonFinite: a model with one computes NaN logits. A
// command words it with its flag (mmconvert: --allow-nonfinite).
type NonFiniteError struct {
	Tensor string // the canonical name
	Name   string // the name in the source file
	Path   string // the source file
	Value  float32
	Index  []int // one index a dimension
	// Element is the row-major flat index, of Elements in the tensor.
	Element, Elements int
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("tensor %q (%s in %s): value %v at index %v (element %d of %d); a model with non-finite weights computes NaN logits",
		e.Tensor, e.Name, e.Path, e.Value, e.Index, e.Element, e.Elements)
}

// nonFinite is the error for the non-finite value x at flat index i.
func (st *SourceTensor) nonFinite(i int, x float32) error {
	return &NonFiniteError{Tensor: st.Canonical, Name: st.Name, Path: st.Reader.Path(), Value: x,
		Index: unflatten(i, st.Shape()), Element: i, Elements: st.NumElements()}
}

// unflatten turns a row-major flat index into one index per dimension.
func unflatten(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

// isNonFinite reports whether x is NaN or an infinity.
func isNonFinite(x float32) bool { return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) }

// firstNonFinite returns the index and value of v's first NaN or infinity,
// or -1.
func firstNonFinite(v []float32) (int, float32) {
	for i, x := range v {
		if isNonFinite(x) {
			return i, x
		}
	}
	return -1, 0
}

// firstNonFiniteRaw returns the flat index and value of the first NaN or
// infinity in raw, the bytes of a tensor of type t (little-endian values;
// for the block types, a block's f16 scale, reported at the block's first
// element), or -1 when every value is finite.
func firstNonFiniteRaw(t quant.Type, raw []byte) (int, float32) {
	switch t {
	case quant.F32:
		for i := 0; i+4 <= len(raw); i += 4 {
			if x := math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])); isNonFinite(x) {
				return i / 4, x
			}
		}
	case quant.F16, quant.BF16:
		conv := quant.F16ToF32
		if t == quant.BF16 {
			conv = quant.BF16ToF32
		}
		for i := 0; i+2 <= len(raw); i += 2 {
			if x := conv(binary.LittleEndian.Uint16(raw[i:])); isNonFinite(x) {
				return i / 2, x
			}
		}
	case quant.Q8_0, quant.Q4_0:
		step := quant.Q8_0BlockBytes
		if t == quant.Q4_0 {
			step = quant.Q4_0BlockBytes
		}
		for b := 0; b+step <= len(raw); b += step {
			if x := quant.F16ToF32(binary.LittleEndian.Uint16(raw[b:])); isNonFinite(x) {
				return b / step * quant.BlockSize, x
			}
		}
	}
	return -1, 0
}
