package convert

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"unsafe"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/quant"
)

// SyntheticShapes are the named model shapes `mmconvert --synthetic` can
// write with random weights, for benchmarks and tests: the public
// mamba-130m (d_model 768, 24 layers, vocab 50280, d_state 16) and a
// MemMamba of the same backbone with the SPEC's default memory.
var SyntheticShapes = map[string]string{
	"mamba-130m":    `{"model_type":"mamba","vocab_size":50280,"hidden_size":768,"num_hidden_layers":24,"state_size":16}`,
	"memmamba-130m": `{"model_type":"memmamba","vocab_size":50280,"hidden_size":768,"num_hidden_layers":24,"state_size":16,"memory":{}}`,
	"mamba-tiny":    `{"model_type":"mamba","vocab_size":256,"hidden_size":64,"num_hidden_layers":2,"state_size":8}`,
	"memmamba-tiny": `{"model_type":"memmamba","vocab_size":256,"hidden_size":64,"num_hidden_layers":2,"state_size":8,"memory":{"pool_size":8,"summary_dim":32,"attn_dim":32,"cross_layer_every":2}}`,
}

// SyntheticShapeNames lists SyntheticShapes' names, sorted.
func SyntheticShapeNames() []string {
	var n []string
	for k := range SyntheticShapes {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// SyntheticInput is an input of the named shape whose tensors are drawn at
// random (seeded, tensor by tensor, as they are read), so that a model of
// any size converts in streaming fashion. The model file is marked
// synthetic, and its tokenizer is byte-level.
func SyntheticInput(shape string, seed uint64) (*Input, error) {
	js, ok := SyntheticShapes[shape]
	if !ok {
		return nil, fmt.Errorf("unknown synthetic shape %q (want one of %s)", shape, strings.Join(SyntheticShapeNames(), ", "))
	}
	c, err := arch.ParseConfig([]byte(js))
	if err != nil {
		return nil, err
	}
	r := &synthReader{seed: seed, shapes: map[string][]int{}, c: c}
	in := &Input{Config: c, Tensors: map[string]*SourceTensor{}, Form: "synthetic " + shape, Synthetic: true,
		Tokenizer: format.Tokenizer{Kind: format.TokenizerBytes}, readers: []source.Reader{r}}
	for _, w := range c.Weights() {
		if w.Optional {
			continue
		}
		t := source.Tensor{Name: w.Name, DType: source.F32, Shape: w.Shape}
		r.tensors = append(r.tensors, t)
		r.shapes[w.Name] = w.Shape
		in.Tensors[w.Name] = &SourceTensor{Canonical: w.Name, Tensor: t, Reader: r}
	}
	return in, nil
}

// synthReader draws each tensor when it is read, from a PRNG seeded with
// the seed and the tensor's name, with the scales of Mamba's initialisation.
type synthReader struct {
	seed    uint64
	c       *arch.Config
	tensors []source.Tensor
	shapes  map[string][]int
}

func (r *synthReader) Path() string             { return "synthetic" }
func (r *synthReader) Tensors() []source.Tensor { return r.tensors }
func (r *synthReader) Metadata() map[string]any { return nil }
func (r *synthReader) Close() error             { return nil }

// ReadRaw returns the tensor as little-endian float32 bytes.
func (r *synthReader) ReadRaw(name string) ([]byte, error) {
	v, err := r.ReadFloat32(name)
	if err != nil {
		return nil, err
	}
	if nativeLittleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)), nil
	}
	return quant.Quantize(quant.F32, v)
}

func (r *synthReader) ReadFloat32(name string) ([]float32, error) {
	shape, ok := r.shapes[name]
	if !ok {
		return nil, fmt.Errorf("synthetic: no tensor %q", name)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(r.seed, h.Sum64()))
	v := make([]float32, n)
	switch {
	case strings.HasSuffix(name, "A_log"):
		N := shape[1]
		for i := range v {
			v[i] = float32(math.Log(float64(i%N + 1)))
		}
	case strings.HasSuffix(name, ".D"), strings.HasSuffix(name, "norm.weight"), strings.HasSuffix(name, "norm_f.weight"):
		for i := range v {
			v[i] = 1
		}
	case strings.HasSuffix(name, "dt_proj.bias"):
		for i := range v {
			dt := math.Exp(rng.Float64()*(math.Log(0.1)-math.Log(1e-3)) + math.Log(1e-3))
			v[i] = float32(dt + math.Log(-math.Expm1(-dt)))
		}
	case strings.HasSuffix(name, ".bias"):
		// zeros
	case name == arch.EmbeddingsName:
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
		}
	default:
		fanIn := shape[len(shape)-1]
		std := 1 / math.Sqrt(float64(fanIn))
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
	}
	return v, nil
}
