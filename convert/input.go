package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/convert/onnxinit"
	"github.com/memmamba/memmamba/convert/safetensors"
	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/convert/torchzip"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/safeio"
)

// Input is an opened checkpoint: its configuration, its tokenizer and its
// tensors under their canonical names, each still in its source file.
type Input struct {
	Config    *arch.Config
	Tokenizer format.Tokenizer
	// Sources are the files read, with their sha256.
	Sources []format.SourceFile
	// Tensors maps canonical names to where they are.
	Tensors map[string]*SourceTensor
	// Unknown lists tensors that are not part of the model, by source name.
	Unknown []string
	// Form names the checkpoint form: safetensors, sharded-safetensors,
	// torch, gguf, onnx, mmq, synthetic.
	Form string
	// Synthetic marks random weights (SyntheticInput).
	Synthetic bool
	// TokenizerMeta holds the GGUF tokenizer keys a tokenizer.json cannot
	// hold (tokenizer.ggml.pre, the special ids, add_bos/add_eos), from a
	// GGUF input or a model file's header, as text (see ggmeta.go).
	TokenizerMeta map[string]string
	// ChatMeta holds the chat template and the special tokens it names
	// (MetaChatTemplate, MetaBOSToken, MetaEOSToken; see chattemplate.go),
	// from tokenizer_config.json, GGUF's tokenizer.chat_template or a
	// model file's header; nil when the checkpoint has none.
	ChatMeta map[string]string
	readers  []source.Reader
}

// SourceTensor is one tensor of the input under its canonical name.
type SourceTensor struct {
	Canonical string
	source.Tensor
	Reader source.Reader
	// FromGGUF marks a tensor that needs llama.cpp's transformation undone
	// (ssm_a, the squeezed conv1d weight).
	FromGGUF bool
}

// Close closes every source file.
func (in *Input) Close() error {
	var errs []error
	for _, r := range in.readers {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// Shape is the tensor's canonical shape (after undoing GGUF's squeeze).
func (st *SourceTensor) Shape() []int {
	if st.FromGGUF && strings.HasSuffix(st.Canonical, ".conv1d.weight") && len(st.Tensor.Shape) == 2 {
		return []int{st.Tensor.Shape[0], 1, st.Tensor.Shape[1]}
	}
	return st.Tensor.Shape
}

// ReadFloat32 reads the tensor's values in canonical form.
func (st *SourceTensor) ReadFloat32() ([]float32, error) {
	v, err := st.Reader.ReadFloat32(st.Name)
	if err != nil {
		return nil, err
	}
	if st.FromGGUF {
		if _, err := gguf.FromMamba(st.Name, st.Tensor.Shape, v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// OpenInput opens a checkpoint: a Hugging Face style folder (config.json,
// weights, tokenizer.json) or one weights file (safetensors, a sharded
// index, a torch.save zip, GGUF, ONNX) with config.json beside it (GGUF
// carries its own configuration).
func OpenInput(path string) (*Input, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	dir, weights := path, ""
	if !st.IsDir() {
		if err := safeio.CheckRegular(path); err != nil {
			return nil, err
		}
		dir, weights = filepath.Dir(path), path
	} else if weights, err = findWeights(dir); err != nil {
		return nil, err
	}
	in := &Input{Tensors: map[string]*SourceTensor{}}
	if err := in.open(dir, weights); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// findWeights picks the weights file of a folder, in order of preference.
func findWeights(dir string) (string, error) {
	for _, pat := range []string{"model.safetensors.index.json", "*.safetensors.index.json", "model.safetensors",
		"*.safetensors", "pytorch_model.bin", "*.pt", "*.pth", "*.bin", "*.gguf", "*.onnx"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		sort.Strings(m)
		if len(m) > 0 {
			return m[0], nil
		}
	}
	return "", fmt.Errorf("%s: no weights found (looked for safetensors, pytorch_model.bin, .pt, .pth, .gguf, .onnx)", dir)
}

func (in *Input) open(dir, weights string) error {
	var r source.Reader
	var err error
	isGGUF := false
	if isModelFile(weights) {
		return in.openModelFile(weights)
	}
	switch low := strings.ToLower(weights); {
	case strings.HasSuffix(low, ".index.json"):
		in.Form = "sharded-safetensors"
		var sh *safetensors.Sharded
		sh, err = safetensors.OpenIndex(weights)
		if err == nil {
			r = sh
			for _, f := range sh.Shards() {
				in.addSource(f.Path())
			}
			in.addSource(weights)
		}
	case strings.HasSuffix(low, ".safetensors"):
		in.Form = "safetensors"
		r, err = safetensors.Open(weights)
	case strings.HasSuffix(low, ".gguf"):
		in.Form = "gguf"
		r, err = gguf.Open(weights)
		isGGUF = true
	case strings.HasSuffix(low, ".onnx"):
		in.Form = "onnx"
		r, err = onnxinit.Open(weights)
	case strings.HasSuffix(low, ".pt"), strings.HasSuffix(low, ".pth"), strings.HasSuffix(low, ".bin"):
		in.Form = "torch"
		r, err = torchzip.Open(weights)
	default:
		return fmt.Errorf("%s: unknown weights format (want .safetensors, .safetensors.index.json, .pt, .pth, .bin, .gguf or .onnx)", weights)
	}
	if err != nil {
		return err
	}
	in.readers = append(in.readers, r)
	if in.Form != "sharded-safetensors" {
		in.addSource(weights)
	}

	// Tensors under canonical names.
	for _, t := range r.Tensors() {
		st := &SourceTensor{Tensor: t, Reader: r}
		if isGGUF {
			name, ok := gguf.CanonicalFromMamba(t.Name)
			if !ok {
				in.Unknown = append(in.Unknown, t.Name)
				continue
			}
			st.Canonical, st.FromGGUF = name, true
		} else {
			st.Canonical = canonicalName(t.Name)
		}
		if prev, dup := in.Tensors[st.Canonical]; dup {
			return fmt.Errorf("%s: tensors %q and %q both map to %q", weights, prev.Name, t.Name, st.Canonical)
		}
		in.Tensors[st.Canonical] = st
	}

	// Configuration: config.json, or the GGUF metadata. Either is checked
	// against the tensors the weights hold before anything is built from
	// its sizes.
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := safeio.ReadFile(cfgPath, safeio.MaxConfigBytes)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // there, but not a regular file or too large
	}
	if err == nil {
		if in.Config, err = arch.ParseConfigFor(raw, in.heldShapes()); err != nil {
			return fmt.Errorf("%s: %w", cfgPath, err)
		}
		in.addSource(cfgPath)
	} else if isGGUF {
		if in.Config, err = gguf.ConfigFromKV(r.Metadata(), r.Tensors()); err != nil {
			return fmt.Errorf("%s: %w", weights, err)
		}
	} else {
		return fmt.Errorf("%s: no config.json beside the weights: %w", dir, err)
	}

	// Tokenizer: tokenizer.json, GGUF's metadata, or byte-level.
	in.Tokenizer = format.Tokenizer{Kind: format.TokenizerBytes}
	tokPath := filepath.Join(dir, "tokenizer.json")
	raw, err = safeio.ReadFile(tokPath, safeio.MaxTokenizerBytes)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		in.Tokenizer = format.Tokenizer{Kind: format.TokenizerHFBPE, JSON: raw}
		in.addSource(tokPath)
	} else if isGGUF {
		if tok, err := gguf.TokenizerFromKV(r.Metadata()); err == nil && tok != nil && tok.Model == "gpt2" {
			in.TokenizerMeta = tokenizerMetaFromGGUF(tok)
			if !isByteLevelGGUF(tok) {
				js, err := tokenizerJSONFromGGUF(tok)
				if err != nil {
					return fmt.Errorf("%s: tokenizer: %w", weights, err)
				}
				in.Tokenizer = format.Tokenizer{Kind: format.TokenizerHFBPE, JSON: js}
			}
		}
	}
	if err := in.openChatMeta(dir, r, isGGUF); err != nil {
		return err
	}
	if in.Tokenizer.Kind == format.TokenizerBytes && in.Config.VocabSize < 256 {
		return fmt.Errorf("%s: no tokenizer.json, and a byte-level model needs vocab_size >= 256 (config says %d)", dir, in.Config.VocabSize)
	}
	return nil
}

// openChatMeta sets the chat template: tokenizer_config.json beside the
// weights, else a GGUF input's tokenizer.chat_template.
func (in *Input) openChatMeta(dir string, r source.Reader, isGGUF bool) error {
	m, path, err := readChatMeta(dir)
	if err != nil {
		return err
	}
	if m != nil {
		in.ChatMeta = m
		in.addSource(path)
		return nil
	}
	if !isGGUF {
		return nil
	}
	kv := r.Metadata()
	tok, _ := gguf.TokenizerFromKV(kv) // its errors are the tokenizer's to report
	if in.ChatMeta, err = chatMetaFromGGUF(kv, tok); err != nil {
		return fmt.Errorf("%s: %w", r.Path(), err)
	}
	return nil
}

// heldShapes maps the canonical names of the input's tensors to their
// canonical shapes, for checking a configuration against them.
func (in *Input) heldShapes() map[string][]int {
	held := make(map[string][]int, len(in.Tensors))
	for name, st := range in.Tensors {
		held[name] = st.Shape()
	}
	return held
}

// openModelFile takes a model file as the input: configuration, tokenizer
// and tensors come from it.
func (in *Input) openModelFile(path string) error {
	s, err := openMMQ(path)
	if err != nil {
		return err
	}
	in.readers = append(in.readers, s)
	in.Form = "mmq"
	h := s.f.Header
	c := h.Config
	in.Config = &c
	in.Tokenizer = h.Tokenizer
	in.TokenizerMeta = tokenizerMetaFromHeader(h.Metadata)
	in.ChatMeta = chatMetaFromHeader(h.Metadata)
	in.Sources = append(in.Sources, h.Provenance.Sources...)
	for _, t := range s.Tensors() {
		in.Tensors[t.Name] = &SourceTensor{Canonical: t.Name, Tensor: t, Reader: s}
	}
	// The header's config against the file's own tensors, as engine.Open
	// checks it (format checks it only where the tensors are named as a
	// model's).
	if err := in.Config.CheckHeld(in.heldShapes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// canonicalName strips the wrappers a checkpoint may add around a
// state_dict ({"model": ...}, {"state_dict": ...}, DataParallel's
// "module.") and maps mamba_ssm's names (arch.CanonicalName).
func canonicalName(name string) string {
	for _, p := range []string{"state_dict.", "model_state_dict.", "model."} {
		if strings.HasPrefix(name, p) && !strings.HasPrefix(name, "model.layers") {
			name = name[len(p):]
			break
		}
	}
	return arch.CanonicalName(name)
}

// addSource records a file with its sha256.
func (in *Input) addSource(path string) {
	sf := format.SourceFile{Path: filepath.Base(path)}
	if f, err := safeio.Open(path); err == nil {
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			sf.SHA256 = hex.EncodeToString(h.Sum(nil))
		}
		f.Close()
	}
	in.Sources = append(in.Sources, sf)
}
