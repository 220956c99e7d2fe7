package convert

import (
	"fmt"
	"path"
	"strings"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/quant"
)

// Policy decides each tensor's storage type in the model file.
//
// The target type (f32, f16, bf16, int8, int4) applies to the weights
// arch.Table marks Quantisable (the matrices the runtime multiplies by: the
// projections, the Note Block's scorers, summary and attention weights, the
// LM head; and the embeddings), when the matrix's input dimension (its
// last) fills whole blocks of the type (32 for int8 and int4). Everything
// else stays f32: norms, the conv1d kernel, A_log, D, biases, 1-D tensors,
// the dt projection when its input width (time_step_rank) is not a multiple
// of 32, and any tensor matched by a Keep glob.
type Policy struct {
	Type quant.Type
	// Keep holds path.Match globs of tensor names kept in f32.
	Keep []string
	// AllowNonFinite converts tensors holding NaN or infinite values
	// (mmconvert --allow-nonfinite). Without it the first such value is
	// refused, naming the tensor and the index.
	AllowNonFinite bool
}

// Decision is the policy's choice for one tensor and why.
type Decision struct {
	Type   quant.Type
	Reason string
	// KeptBy is the Keep glob that kept the tensor in f32, if one did (a
	// command words it with its flag: mmconvert's --keep).
	KeptBy string
}

// KeepGlobError is Validate's error: a Keep glob that path.Match cannot
// read. A command words it with its flag (mmconvert: --keep).
type KeepGlobError struct {
	Glob string
	Err  error // path.ErrBadPattern
}

func (e *KeepGlobError) Error() string { return fmt.Sprintf("keep glob %q: %v", e.Glob, e.Err) }

func (e *KeepGlobError) Unwrap() error { return e.Err }

// Validate checks the globs; a bad one is a *KeepGlobError.
func (p Policy) Validate() error {
	for _, g := range p.Keep {
		if _, err := path.Match(g, ""); err != nil {
			return &KeepGlobError{Glob: g, Err: err}
		}
	}
	return nil
}

// Decide returns the storage type of weight w.
func (p Policy) Decide(w arch.Weight) Decision {
	for _, g := range p.Keep {
		if ok, _ := path.Match(g, w.Name); ok {
			return Decision{Type: quant.F32, Reason: "kept by keep glob " + g, KeptBy: g}
		}
	}
	if p.Type == quant.F32 {
		return Decision{Type: quant.F32, Reason: "f32 requested"}
	}
	if len(w.Shape) != 2 || !w.Quantisable {
		return Decision{Type: quant.F32, Reason: whyF32(w)}
	}
	if in := w.Shape[1]; in%p.Type.BlockLen() != 0 {
		return Decision{Type: quant.F32, Reason: fmt.Sprintf("input width %d is not a multiple of the %s block of %d", in, p.Type, p.Type.BlockLen())}
	}
	return Decision{Type: p.Type, Reason: "matrix"}
}

func whyF32(w arch.Weight) string {
	switch {
	case strings.HasSuffix(w.Name, "norm.weight") || strings.HasSuffix(w.Name, "norm_f.weight"):
		return "norm"
	case strings.HasSuffix(w.Name, ".bias"):
		return "bias"
	case strings.HasSuffix(w.Name, "conv1d.weight"):
		return "conv1d kernel"
	case strings.HasSuffix(w.Name, "A_log"):
		return "A_log (precision of the decay)"
	case strings.HasSuffix(w.Name, ".D"):
		return "D (1-D)"
	case len(w.Shape) == 1:
		return "1-D"
	}
	return "not a matrix product"
}
