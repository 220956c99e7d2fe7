// Package convert turns a PyTorch-exported checkpoint (safetensors, sharded
// safetensors, torch.save zips, GGUF, ONNX initializers) into the project's
// model file (package format), and a model file into GGUF.
//
// Conversion streams: tensors are read, converted and written one at a
// time, so memory stays near the largest tensor, not the model. Names are
// mapped to SPEC.md's canonical names, every tensor the configuration calls
// for is checked for presence and shape, and the quantisation Policy picks
// each tensor's type.
package convert

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"time"
	"unsafe"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/quant"
)

// Version is the converter's version, recorded in every file it writes.
const Version = "mmconvert 0.1.0"

// Options control Convert.
type Options struct {
	Policy Policy
	// Force allows replacing an existing output file; without it an
	// existing one is an error wrapping safeio.ErrOutputExists (which
	// matches fs.ErrExist).
	Force bool
	// Created is recorded as the creation time; zero means now.
	Created time.Time
	// Progress, when set, is called after each tensor with the bytes of
	// source data done and the total.
	Progress func(done, total int64)
}

// Report says what a conversion did.
type Report struct {
	Output  string
	Config  *arch.Config
	Form    string
	Tensors []TensorReport
	// Unknown lists source tensors that are not part of the model (not
	// written).
	Unknown []string
	// DroppedTiedHead is set when lm_head.weight was in the checkpoint
	// but equal to the tied embeddings.
	DroppedTiedHead bool
	// SourceBytes and OutputBytes are the tensors' sizes before and after.
	SourceBytes, OutputBytes int64
}

// TensorReport is one tensor's conversion.
type TensorReport struct {
	Name   string
	Shape  []int
	From   source.DType
	To     quant.Type
	Reason string
	// KeptBy is the Keep glob that kept the tensor in f32 (Decision.KeptBy).
	KeptBy string
	Bytes  int64
}

// Convert converts the checkpoint at input (folder or file) to a model file
// at output.
func Convert(input, output string, opts Options) (*Report, error) {
	return openAndWrite(input, output, opts, Write)
}

// openAndWrite checks opts' policy, opens the checkpoint at input and
// hands it to write (Write or WriteGGUF), closing it after.
func openAndWrite(input, output string, opts Options, write func(*Input, string, Options) (*Report, error)) (*Report, error) {
	if err := opts.Policy.Validate(); err != nil {
		return nil, err
	}
	in, err := OpenInput(input)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return write(in, output, opts)
}

// Write writes an opened input to a model file at output.
func Write(in *Input, output string, opts Options) (*Report, error) {
	if err := in.checkWrite(output); err != nil {
		return nil, err
	}
	c := in.Config
	rep := &Report{Output: output, Config: c, Form: in.Form, Unknown: slices.Clone(in.Unknown)}
	// The configuration's sizes are checked against what the input holds
	// before its per-layer weight list is built.
	if err := c.CheckHeld(in.heldShapes()); err != nil {
		return nil, fmt.Errorf("%s: %w", in.describe(), err)
	}
	weights := c.Weights()
	known := map[string]bool{}
	var missing []string
	var plan []format.TensorSpec
	var todo []arch.Weight
	for _, w := range weights {
		known[w.Name] = true
		st, ok := in.Tensors[w.Name]
		if !ok {
			if !w.Optional {
				missing = append(missing, w.Name)
			}
			continue
		}
		if !arch.ShapeEqual(st.Shape(), w.Shape) {
			return nil, fmt.Errorf("tensor %q (%s in %s) has shape %v, the config calls for %v (%s)",
				w.Name, st.Name, st.Reader.Path(), st.Shape(), w.Shape, shapeKeys(c))
		}
		if w.Name == arch.LMHeadName && c.TieEmbeddings {
			same, err := sameValues(in.Tensors[arch.EmbeddingsName], st)
			if err != nil {
				return nil, err
			}
			if !same {
				return nil, fmt.Errorf("tensor %q differs from the embeddings, but the config ties them (tie_word_embeddings)", w.Name)
			}
			rep.DroppedTiedHead = true
			continue
		}
		todo = append(todo, w)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %d required tensors missing: %s", in.describe(), len(missing), listNames(missing))
	}
	for name, st := range in.Tensors {
		if !known[name] {
			rep.Unknown = append(rep.Unknown, st.Name)
		}
	}
	sort.Strings(rep.Unknown)

	var total int64
	for _, w := range todo {
		d := opts.Policy.Decide(w)
		st := in.Tensors[w.Name]
		plan = append(plan, format.TensorSpec{Name: w.Name, Type: d.Type, Shape: w.Shape})
		size, _ := format.DataSize(d.Type, w.Shape)
		rep.Tensors = append(rep.Tensors, TensorReport{Name: w.Name, Shape: w.Shape, From: st.DType, To: d.Type, Reason: d.Reason, KeptBy: d.KeptBy, Bytes: int64(size)})
		total += int64(st.NumElements()) * int64(dtypeSize(st.DType))
		rep.OutputBytes += int64(size)
	}
	rep.SourceBytes = total

	hdr := format.Header{
		Config:    *c,
		Tokenizer: in.Tokenizer,
		Provenance: format.Provenance{
			Sources:   in.Sources,
			Converter: Version,
			Created:   opts.Created,
			Synthetic: in.Synthetic,
		},
		Metadata: headerMetadata(in.Form, in.TokenizerMeta, in.ChatMeta),
	}
	w, err := format.Create(output, hdr, plan, format.CreateOptions{Force: opts.Force})
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	var done int64
	for i, wt := range todo {
		st := in.Tensors[wt.Name]
		data, err := encodeTensor(st, plan[i].Type, opts.Policy.AllowNonFinite)
		if err != nil {
			return nil, err
		}
		if err := w.WriteTensor(wt.Name, data); err != nil {
			return nil, err
		}
		if len(data) > bigTensor {
			// Return a big tensor's buffers before reading the next, so
			// that memory stays near one tensor, not two or three.
			data = nil
			runtime.GC()
		}
		done += int64(st.NumElements()) * int64(dtypeSize(st.DType))
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return rep, nil
}

// encodeTensor reads one tensor and encodes it as type t. Bytes already of
// type t are copied as they are (bit-exact), unless a GGUF transformation
// applies. A NaN or infinite value (or block scale) is refused by name and
// index unless allowNonFinite: one NaN in a norm makes every logit NaN.
func encodeTensor(st *SourceTensor, t quant.Type, allowNonFinite bool) ([]byte, error) {
	if sameType(st.DType, t) && !(st.FromGGUF && needsTransform(st.Name)) {
		raw, err := st.Reader.ReadRaw(st.Name)
		if err != nil {
			return nil, err
		}
		if i, x := firstNonFiniteRaw(t, raw); i >= 0 && !allowNonFinite {
			return nil, st.nonFinite(i, x)
		}
		return raw, nil
	}
	v, err := st.ReadFloat32()
	if err != nil {
		return nil, err
	}
	if i, x := firstNonFinite(v); i >= 0 && !allowNonFinite {
		return nil, st.nonFinite(i, x)
	}
	if t == quant.F32 && nativeLittleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)), nil
	}
	out, err := quant.Quantize(t, v)
	if err != nil {
		return nil, fmt.Errorf("tensor %q (%s in %s): %w", st.Canonical, st.Name, st.Reader.Path(), err)
	}
	return out, nil
}

// bigTensor is the size above which Write collects garbage after a tensor.
const bigTensor = 16 << 20

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func needsTransform(ggufName string) bool {
	n := len(ggufName)
	return (n >= 6 && ggufName[n-6:] == ".ssm_a") || (n >= 18 && ggufName[n-18:] == ".ssm_conv1d.weight")
}

func sameType(d source.DType, t quant.Type) bool {
	switch d {
	case source.F32:
		return t == quant.F32
	case source.F16:
		return t == quant.F16
	case source.BF16:
		return t == quant.BF16
	case source.Q8_0:
		return t == quant.Q8_0
	case source.Q4_0:
		return t == quant.Q4_0
	}
	return false
}

func dtypeSize(d source.DType) int {
	switch d {
	case source.F64, source.I64:
		return 8
	case source.F32, source.I32:
		return 4
	case source.F16, source.BF16:
		return 2
	}
	return 1
}

// sameValues reports whether two tensors hold the same values.
func sameValues(a, b *SourceTensor) (bool, error) {
	if a == nil || b == nil {
		return false, nil
	}
	x, err := a.ReadFloat32()
	if err != nil {
		return false, err
	}
	y, err := b.ReadFloat32()
	if err != nil {
		return false, err
	}
	return slices.Equal(x, y), nil
}

func (in *Input) describe() string {
	if len(in.Sources) > 0 {
		return in.Sources[0].Path
	}
	return "input"
}

func listNames(names []string) string {
	if len(names) > 8 {
		return fmt.Sprintf("%q and %d more", names[:8], len(names)-8)
	}
	return fmt.Sprintf("%q", names)
}

func shapeKeys(c *arch.Config) string {
	return fmt.Sprintf("vocab_size=%d hidden_size=%d intermediate_size=%d state_size=%d conv_kernel=%d time_step_rank=%d",
		c.VocabSize, c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank)
}
