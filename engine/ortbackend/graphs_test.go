package ortbackend

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/onnxgraph"
	"github.com/memmamba/memmamba/quant"
)

// TestGraphsReadDenseWeights builds every graph (no ONNX Runtime needed)
// and checks that together they read exactly the weights arch.Table marks
// ReadDense (the embeddings in the LM head's place when it is tied), so the
// table's reader column is the truth for this backend.
func TestGraphsReadDenseWeights(t *testing.T) {
	for _, name := range []string{"mamba-tiny", "mamba-bias-untied", "memmamba-priority", "falcon-mamba-tiny"} {
		t.Run(name, func(t *testing.T) {
			g, err := fixtures.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.mmq")
			if _, err := convert.Convert(g.Source(), path, convert.Options{Policy: convert.Policy{Type: quant.Q8_0}, Created: time.Unix(0, 0).UTC()}); err != nil {
				t.Fatal(err)
			}
			m, err := engine.Open(path, engine.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			gr := &graphs{m: m, file: filepath.Base(path), offsets: map[string]fileTensor{}}
			for _, ft := range m.Header.Tensors {
				gr.offsets[ft.Name] = fileTensor{ft.Type, ft.Shape, int64(ft.Offset), int64(ft.Size)}
			}
			c := m.Config
			(*graphs).in0(gr, onnxgraph.NewBuilder("g"), 0)
			(*graphs).head(gr, onnxgraph.NewBuilder("g"), 0)
			for l := range c.NumLayers {
				(*graphs).ssm(gr, onnxgraph.NewBuilder("g"), l)
				(*graphs).out(gr, onnxgraph.NewBuilder("g"), l)
				if c.IsMemMamba() {
					(*graphs).note(gr, onnxgraph.NewBuilder("g"), l)
				}
			}
			if gr.err != nil {
				t.Fatal(gr.err)
			}
			var want, got []string
			for _, w := range c.Weights() {
				if _, stored := gr.offsets[w.Name]; !stored {
					if w.ID == arch.WLMHead {
						want = append(want, arch.EmbeddingsName)
					}
					continue
				}
				if w.Reader&arch.ReadDense != 0 {
					want = append(want, w.Name)
				}
			}
			for n := range gr.read {
				got = append(got, n)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("the graphs read\n%v\nthe table's dense weights are\n%v", got, want)
			}
		})
	}
}
