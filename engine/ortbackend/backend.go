// Package ortbackend is the engine's ONNX Runtime backend: it runs a model's
// dense blocks (engine.DenseBlocks) as ONNX graphs that it builds at load
// time from the model file's tensor table; the embedding lookup, the conv,
// the scan and the Note Block's pools stay in the engine. Importing the
// package registers it as engine.Options.Backend "ort"
// (engine.RegisterBackend); engine/ort is the thin wrapper of the ONNX
// Runtime library it runs on.
//
// Graphs, for a chunk of T tokens (T is a symbolic dimension):
//
//	in0      x -> xz                                  (layer 0's norm and in_proj)
//	ssm[l]   a' -> dbc, dt                            (x_proj[, Falcon-Mamba's norms], dt_proj, softplus)
//	out[l]   Mamba:    y, x -> mix, r, xz'            (out_proj, residual, then layer l+1's norm and in_proj)
//	         MemMamba: y, x, m0 -> mix, r, I, G, W_s r, q_tok[, q_lay]
//	note[l]  r, o_tok[, o_lay], s_tok[, s_lay] -> x', xz'   (o_proj, gates, residual, layer l+1's in_proj)
//	head     x -> logits                              (norm_f, lm_head)
//
// so a token costs 2L+2 calls for Mamba and 3L+2 for MemMamba. The graphs
// that compute the next call's inputs early (xz', and the Note Block's
// inputs in out[l]) rely on DenseBlocks' call order.
//
// Weights are not copied into the graphs. f32, f16 and bf16 tensors are ONNX
// external data pointing at their bytes in the model file (ONNX Runtime maps
// the file). f16 and bf16 matrices are decoded to f32 into a scratch file
// that ONNX Runtime reads as external data and packs (without a writable
// scratch folder, a Cast in the graph that ONNX Runtime folds). int8 and
// int4 matrices become com.microsoft MatMulNBits weights: the GGUF-style
// blocks are re-laid out once, at load, into MatMulNBits' layout
// (onnxgraph.NBitsFromBlocks: same bits, float32 scales), written to a
// scratch file that ONNX Runtime reads as external data and packs into its
// own layout; the file is deleted once the sessions exist. So the process
// holds ONNX Runtime's packed copy of the quantised weights, not also ours.
package ortbackend

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/engine/ort"
	"github.com/memmamba/memmamba/onnxgraph"
)

// Name is the backend's name, engine.Options.Backend's value.
const Name = "ort"

func init() { engine.RegisterBackend(Name, open) }

// Options configure the backend; they go in engine.Options.BackendOptions
// (as an Options or a *Options; nil takes the defaults).
type Options struct {
	// Lib is the path of libonnxruntime.so.1; empty: MMRUN_ORT_LIB, then
	// the project's third_party/onnxruntime/lib.
	Lib string
	// Threads is ONNX Runtime's intra-op thread count (0: engine.Options.Threads).
	Threads int
	// DisablePrepacking keeps ONNX Runtime from copying weights into its
	// own blocked layouts (less memory, usually slower).
	DisablePrepacking bool
	// DumpDir, when set, receives each graph as NAME.onnx (for inspection
	// with other ONNX tools; the weights stay external data).
	DumpDir string
}

// optionsOf returns the backend's options from the engine's.
func optionsOf(opts engine.Options) (Options, error) {
	switch o := opts.BackendOptions.(type) {
	case nil:
		return Options{}, nil
	case Options:
		return o, nil
	case *Options:
		if o == nil {
			return Options{}, nil
		}
		return *o, nil
	}
	return Options{}, fmt.Errorf("ONNX Runtime backend: BackendOptions is a %T, not an ortbackend.Options", opts.BackendOptions)
}

// backend is one model's ONNX Runtime sessions, one per graph.
type backend struct {
	m              *engine.Model
	in0, head      *ort.Session
	ssm, out, note []*ort.Session
}

// open is the backend's engine.OpenBackend.
func open(m *engine.Model, path string, opts engine.Options) (engine.Backend, error) {
	o, err := optionsOf(opts)
	if err != nil {
		return nil, err
	}
	lib, err := ort.FindLibrary(o.Lib, "")
	if err != nil {
		return nil, err
	}
	if err := ort.Init(lib); err != nil {
		return nil, err
	}
	if o.Threads == 0 {
		o.Threads = m.Threads()
	}
	ld := newLoader(m, path, o)
	defer ld.close()
	b := &backend{m: m}
	if err := b.load(ld); err != nil {
		b.Close()
		return nil, fmt.Errorf("ONNX Runtime backend: %w", err)
	}
	ld.keepBlocks()
	return b, nil
}

// load builds every graph and creates its session.
func (b *backend) load(ld *loader) error {
	var err error
	if b.in0, err = ld.session("in0", (*graphs).in0, 0); err != nil {
		return err
	}
	if b.head, err = ld.session("head", (*graphs).head, 0); err != nil {
		return err
	}
	c := b.m.Config
	for l := range c.NumLayers {
		s, err := ld.session(fmt.Sprintf("ssm%d", l), (*graphs).ssm, l)
		if err != nil {
			return err
		}
		b.ssm = append(b.ssm, s)
		if s, err = ld.session(fmt.Sprintf("out%d", l), (*graphs).out, l); err != nil {
			return err
		}
		b.out = append(b.out, s)
		if c.IsMemMamba() {
			if s, err = ld.session(fmt.Sprintf("note%d", l), (*graphs).note, l); err != nil {
				return err
			}
			b.note = append(b.note, s)
		}
	}
	return nil
}

// Close closes the sessions.
func (b *backend) Close() {
	for _, s := range append(append(append([]*ort.Session{b.in0, b.head}, b.ssm...), b.out...), b.note...) {
		if s != nil {
			s.Close()
		}
	}
}

// loader builds the graphs and their sessions while a model loads.
//
// External data is found relative to the model file's folder (ONNX Runtime
// refuses paths that leave it, links included): the model file itself, and
// a scratch file of the re-laid-out int8/int4 blocks next to it, which ONNX
// Runtime reads while it creates the sessions and which goes when loading is
// done (close). Where the folder is not writable, the blocks go into the
// graphs instead (ONNX Runtime then holds one more copy of them).
type loader struct {
	g       *graphs
	so      ort.Options
	dumpDir string
}

func newLoader(m *engine.Model, path string, o Options) *loader {
	dir := filepath.Dir(path)
	ld := &loader{
		g:       &graphs{m: m, file: filepath.Base(path), offsets: map[string]fileTensor{}},
		so:      ort.Options{IntraOpThreads: o.Threads, DisablePrepacking: o.DisablePrepacking, ExternalDataDir: dir},
		dumpDir: o.DumpDir,
	}
	if ext, err := os.CreateTemp(dir, "."+filepath.Base(path)+".ort-blocks-*.tmp"); err == nil {
		ld.g.ext, ld.g.extName = ext, filepath.Base(ext.Name())
	}
	for _, t := range m.Header.Tensors {
		ld.g.offsets[t.Name] = fileTensor{t.Type, t.Shape, int64(t.Offset), int64(t.Size)}
	}
	return ld
}

// session builds graph what (build's graph of layer l) and creates its
// session.
func (ld *loader) session(what string, build buildFunc, l int) (*ort.Session, error) {
	gb := onnxgraph.NewBuilder(what)
	ins, outs := build(ld.g, gb, l)
	model, err := gb.Marshal()
	if err == nil {
		err = ld.g.err
	}
	if err == nil && ld.dumpDir != "" {
		err = os.WriteFile(filepath.Join(ld.dumpDir, what+".onnx"), model, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("graph %s: %w", what, err)
	}
	s, err := ort.NewSession(model, ins, outs, ld.so)
	if err != nil {
		return nil, fmt.Errorf("graph %s: %w", what, err)
	}
	// ONNX Runtime has copied what it needs: return the graph's bytes to
	// the OS before the next graph, so that loading never holds more than
	// one graph's transient copies.
	model = nil
	debug.FreeOSMemory()
	return s, nil
}

// keepBlocks copies the re-laid-out blocks next to the dumped graphs, which
// name them as external data.
func (ld *loader) keepBlocks() {
	if ld.dumpDir == "" || ld.g.ext == nil {
		return
	}
	if data, err := os.ReadFile(ld.g.ext.Name()); err == nil {
		os.WriteFile(filepath.Join(ld.dumpDir, ld.g.extName), data, 0o644)
	}
}

// close removes the blocks file (the sessions hold what they need of it).
func (ld *loader) close() {
	if ext := ld.g.ext; ext != nil {
		ext.Close()
		os.Remove(ext.Name())
	}
}
