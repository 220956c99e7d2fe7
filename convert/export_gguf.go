package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/quant"
)

// ConvertToGGUF converts a checkpoint or a model file to GGUF: plain Mamba
// under llama.cpp's "mamba" architecture (its tensor names, metadata keys
// and transformations: ssm_a = -exp(A_log), the conv1d kernel squeezed),
// MemMamba under architecture "memmamba" with the Note Block tensors under
// the names of gguf/README.md. Tensors already of the requested type are
// copied bit for bit; lm_head is left out when tied, as llama.cpp expects.
func ConvertToGGUF(input, output string, opts Options) (*Report, error) {
	return openAndWrite(input, output, opts, WriteGGUF)
}

// WriteGGUF writes an opened input as GGUF.
func WriteGGUF(in *Input, output string, opts Options) (*Report, error) {
	if err := safeio.NotInput(output, in.Files()...); err != nil {
		return nil, err
	}
	if !opts.Force {
		if _, err := os.Stat(output); err == nil {
			return nil, fmt.Errorf("%s: %w", output, safeio.ErrOutputExists)
		}
	}
	c := in.Config
	rep := &Report{Output: output, Config: c, Form: in.Form, Unknown: in.Unknown}
	kvs, err := gguf.ConfigToKV(c)
	if err != nil {
		return nil, err
	}
	kvs = append(kvs, gguf.KV{Key: gguf.KeyName, Value: "memmamba-go export"})
	tok, err := ggufTokenizer(in.Tokenizer, c.VocabSize)
	if err != nil {
		return nil, err
	}
	if err := applyTokenizerMeta(tok, in.TokenizerMeta); err != nil {
		return nil, fmt.Errorf("%s: %w", in.describe(), err)
	}
	tkv, err := tok.KVs()
	if err != nil {
		return nil, err
	}

	type item struct {
		w     arch.Weight
		gname string
		typ   quant.Type
	}
	var items []item
	var infos []gguf.TensorInfo
	var missing []string
	held := map[quant.Type]bool{} // the types the tensors are stored as
	for _, w := range c.Weights() {
		st, ok := in.Tensors[w.Name]
		if !ok || (w.Name == arch.LMHeadName && c.TieEmbeddings) {
			if !ok && !w.Optional {
				missing = append(missing, w.Name)
			}
			continue
		}
		if !arch.ShapeEqual(st.Shape(), w.Shape) {
			return nil, fmt.Errorf("tensor %q has shape %v, the config calls for %v", w.Name, st.Shape(), w.Shape)
		}
		gname, ok := gguf.MambaTensorName(w.Name)
		if !ok {
			return nil, fmt.Errorf("tensor %q has no GGUF name", w.Name)
		}
		d := opts.Policy.Decide(w)
		shape := w.Shape
		if strings.HasSuffix(w.Name, ".conv1d.weight") {
			shape = []int{w.Shape[0], w.Shape[2]}
		}
		items = append(items, item{w, gname, d.Type})
		held[d.Type] = true
		infos = append(infos, gguf.TensorInfo{Name: gname, Dims: gguf.DimsFromShape(shape), Type: gguf.GGMLType(d.Type)})
		size, _ := format.DataSize(d.Type, shape)
		rep.Tensors = append(rep.Tensors, TensorReport{Name: w.Name, Shape: shape, From: st.DType, To: d.Type, Reason: d.Reason, KeptBy: d.KeptBy, Bytes: int64(size)})
		rep.OutputBytes += int64(size)
		rep.SourceBytes += int64(st.NumElements()) * int64(dtypeSize(st.DType))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %d required tensors missing: %s", in.describe(), len(missing), listNames(missing))
	}
	ft, err := gguf.FileTypeOf(opts.Policy.Type, held[opts.Policy.Type])
	if err != nil {
		return nil, err
	}
	kvs = append(kvs, gguf.KV{Key: gguf.KeyFileType, Value: uint32(ft)})
	kvs = append(kvs, tkv...)
	kvs = append(kvs, chatTemplateKV(in)...)
	gw, err := gguf.Create(output, kvs, infos)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			gw.Close() // removes the partial file
		}
	}()
	var done int64
	for _, it := range items {
		st := in.Tensors[it.w.Name]
		data, err := ggufData(st, it.w, it.typ)
		if err != nil {
			return nil, err
		}
		// Bit-exact copies are not checked by quant: check them here.
		if i, x := firstNonFiniteRaw(it.typ, data); i >= 0 && !opts.Policy.AllowNonFinite {
			return nil, st.nonFinite(i, x)
		}
		if err := gw.WriteTensor(it.gname, data); err != nil {
			return nil, err
		}
		done += int64(st.NumElements()) * int64(dtypeSize(st.DType))
		if opts.Progress != nil {
			opts.Progress(done, rep.SourceBytes)
		}
	}
	if err := gw.Close(); err != nil {
		return nil, err
	}
	ok = true
	return rep, nil
}

// ggufData encodes one tensor as GGUF stores it. A tensor that needs no
// transformation and is already of type t is copied bit for bit.
func ggufData(st *SourceTensor, w arch.Weight, t quant.Type) ([]byte, error) {
	transform := strings.HasSuffix(w.Name, ".mixer.A_log")
	if st.FromGGUF && strings.HasSuffix(w.Name, ".mixer.A_log") && sameType(st.DType, t) {
		// ssm_a from a GGUF source goes back as it came.
		return st.Reader.ReadRaw(st.Name)
	}
	if !transform && sameType(st.DType, t) && !(st.FromGGUF && needsTransform(st.Name)) {
		return st.Reader.ReadRaw(st.Name)
	}
	v, err := st.ReadFloat32()
	if err != nil {
		return nil, err
	}
	if transform {
		if _, err := gguf.ToMamba(w.Name, w.Shape, v); err != nil {
			return nil, err
		}
	}
	out, err := quant.Quantize(t, v)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", w.Name, err)
	}
	return out, nil
}

// ggufTokenizer converts the model's tokenizer to llama.cpp's "gpt2"
// (byte-level BPE) metadata, with every key llama.cpp's vocabulary loader
// reads for it: tokenizer.ggml.merges is always written (llama.cpp refuses
// a gpt2 tokenizer without it), tokenizer.ggml.pre names the pre-tokenizer,
// and the special ids are explicit (llama.cpp's default for a gpt2 model
// without them is id 11).
//
// A byte-level model (id = byte) becomes a BPE with no merges whose 256
// tokens are the bytes in GPT-2's byte-to-unicode spelling, which
// llama.cpp's byte-level BPE encodes the same way whatever the
// pre-tokenizer; it is written as "gpt-2", with BOS = EOS = padding = 0
// (the NUL byte, the id the byte-level models' config.json names). A
// tokenizer.json keeps its merges; its pre-tokenizer name is chosen by
// preFor, BOS and EOS are its special <|endoftext|> token, padding its
// special <|padding|> (GPT-NeoX's). The vocabulary is padded to vocab_size
// with unused "[PADn]" tokens, as llama.cpp's converter does.
func ggufTokenizer(t format.Tokenizer, vocabSize int) (*gguf.Tokenizer, error) {
	g := &gguf.Tokenizer{Model: gguf.TokenizerGPT2, BOS: -1, EOS: -1, UNK: -1, PAD: -1, Merges: []string{}}
	switch t.Kind {
	case format.TokenizerBytes:
		b2u := bytesToUnicode()
		for b := range 256 {
			g.Tokens = append(g.Tokens, string(b2u[b]))
			g.TokenTypes = append(g.TokenTypes, gguf.TokenNormal)
		}
		g.Pre, g.BOS, g.EOS, g.PAD = preGPT2, 0, 0, 0
	case format.TokenizerHFBPE:
		var doc struct {
			AddedTokens []struct {
				ID      int    `json:"id"`
				Content string `json:"content"`
				Special bool   `json:"special"`
			} `json:"added_tokens"`
			PreTokenizer json.RawMessage `json:"pre_tokenizer"`
			Model        struct {
				Type   string            `json:"type"`
				Vocab  map[string]int    `json:"vocab"`
				Merges []json.RawMessage `json:"merges"`
			} `json:"model"`
		}
		if err := json.Unmarshal(t.JSON, &doc); err != nil {
			return nil, fmt.Errorf("tokenizer.json: %w", err)
		}
		if doc.Model.Type != "BPE" {
			return nil, fmt.Errorf("tokenizer.json: model type %q; GGUF export handles byte-level BPE", doc.Model.Type)
		}
		byID := map[int]string{}
		types := map[int]int32{}
		for s, id := range doc.Model.Vocab {
			byID[id] = s
			types[id] = gguf.TokenNormal
		}
		for _, a := range doc.AddedTokens {
			byID[a.ID] = a.Content
			types[a.ID] = gguf.TokenUserDefined
			if a.Special {
				types[a.ID] = gguf.TokenControl
				if strings.Contains(a.Content, "endoftext") && g.EOS < 0 {
					g.EOS, g.BOS = a.ID, a.ID
				}
				if a.Content == "<|padding|>" && g.PAD < 0 {
					g.PAD = a.ID
				}
			}
		}
		ids := make([]int, 0, len(byID))
		for id := range byID {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for i, id := range ids {
			if id != i {
				return nil, fmt.Errorf("tokenizer.json: token ids are not contiguous (no token %d)", i)
			}
			g.Tokens = append(g.Tokens, byID[id])
			g.TokenTypes = append(g.TokenTypes, types[id])
		}
		for _, m := range doc.Model.Merges {
			var s string
			if json.Unmarshal(m, &s) == nil {
				g.Merges = append(g.Merges, s)
				continue
			}
			var pair []string
			if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("tokenizer.json: bad merge %s", m)
			}
			g.Merges = append(g.Merges, pair[0]+" "+pair[1])
		}
		g.Pre = preFor(doc.PreTokenizer, g.Tokens)
	default:
		return nil, fmt.Errorf("unknown tokenizer kind %q", t.Kind)
	}
	if len(g.Tokens) > vocabSize {
		return nil, fmt.Errorf("the tokenizer has %d tokens, the model's vocabulary %d", len(g.Tokens), vocabSize)
	}
	for i := len(g.Tokens); i < vocabSize; i++ {
		g.Tokens = append(g.Tokens, fmt.Sprintf("[PAD%d]", i))
		g.TokenTypes = append(g.TokenTypes, gguf.TokenUnused)
	}
	return g, nil
}

// bytesToUnicode is GPT-2's reversible map from bytes to printable runes.
func bytesToUnicode() [256]rune {
	var m [256]rune
	used := [256]bool{}
	for b := '!'; b <= '~'; b++ {
		m[b], used[b] = b, true
	}
	for b := '¡'; b <= '¬'; b++ {
		m[b], used[b] = b, true
	}
	for b := '®'; b <= 'ÿ'; b++ {
		m[b], used[b] = b, true
	}
	n := 0
	for b := range 256 {
		if !used[b] {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}
