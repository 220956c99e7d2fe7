package arch

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// specWeights is SPEC.md's "Weight names" table written out by hand, in the
// model file's order (the list Config.Weights produced before the table
// drove it): the table must give exactly this, for every configuration.
func specWeights(c *Config) []Weight {
	d, E, N, K, R, V := c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank, c.VocabSize
	var ws []Weight
	add := func(name string, matmul bool, shape ...int) {
		ws = append(ws, Weight{Name: name, Shape: shape, Matmul: matmul})
	}
	attend := func(p string) {
		m := c.Memory
		add(p+"norm.weight", false, d)
		add(p+"q_proj.weight", true, m.AttnDim, d)
		add(p+"k_proj.weight", true, m.AttnDim, m.SummaryDim)
		add(p+"v_proj.weight", true, m.AttnDim, m.SummaryDim)
		add(p+"o_proj.weight", true, d, m.AttnDim)
		add(p+"gate.weight", true, d, 2*d)
		add(p+"gate.bias", false, d)
	}
	add(EmbeddingsName, false, V, d)
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("backbone.layers.%d.", l)
		mx := p + "mixer."
		add(mx+"A_log", false, E, N)
		add(mx+"D", false, E)
		add(mx+"in_proj.weight", true, 2*E, d)
		if c.UseBias {
			add(mx+"in_proj.bias", false, 2*E)
		}
		add(mx+"conv1d.weight", false, E, 1, K)
		if c.UseConvBias {
			add(mx+"conv1d.bias", false, E)
		}
		add(mx+"x_proj.weight", true, R+2*N, E)
		add(mx+"dt_proj.weight", true, E, R)
		add(mx+"dt_proj.bias", false, E)
		add(mx+"out_proj.weight", true, d, E)
		if c.UseBias {
			add(mx+"out_proj.bias", false, d)
		}
		add(p+"norm.weight", false, d)
		if c.IsMemMamba() {
			m := c.Memory
			nb := p + "note."
			add(nb+"score.fc1.weight", true, m.ScoreDim, d)
			add(nb+"score.fc1.bias", false, m.ScoreDim)
			add(nb+"score.fc2.weight", true, 1, m.ScoreDim)
			add(nb+"score.fc2.bias", false, 1)
			add(nb+"trigger.weight", true, 1, d)
			add(nb+"trigger.bias", false, 1)
			add(nb+"summary.weight", true, m.SummaryDim, d)
			attend(nb + "token_attn.")
			if (l+1)%m.CrossLayerEvery == 0 {
				attend(nb + "layer_attn.")
			}
		}
	}
	add(NormFName, false, d)
	ws = append(ws, Weight{Name: LMHeadName, Shape: []int{V, d}, Matmul: true, Optional: c.TieEmbeddings})
	return ws
}

func TestWeightsMatchSpec(t *testing.T) {
	for _, js := range []string{
		`{"vocab_size":50,"hidden_size":8,"num_hidden_layers":3}`,
		`{"vocab_size":50,"hidden_size":8,"num_hidden_layers":2,"use_bias":true,"use_conv_bias":false,"tie_word_embeddings":false}`,
		`{"model_type":"falcon_mamba","vocab_size":50,"hidden_size":8,"num_hidden_layers":2}`,
		`{"model_type":"memmamba","vocab_size":50,"hidden_size":16,"num_hidden_layers":6,"memory":{"cross_layer_every":2,"attn_dim":8,"n_heads":2,"summary_dim":4}}`,
		`{"model_type":"memmamba","vocab_size":50,"hidden_size":16,"num_hidden_layers":5,"use_bias":true,"memory":{"cross_layer_every":4}}`,
	} {
		c, err := ParseConfig([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		got, want := c.Weights(), specWeights(c)
		if len(got) != len(want) {
			t.Fatalf("%s: %d weights, the SPEC lists %d", js, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || g.Matmul != w.Matmul || g.Optional != w.Optional {
				t.Errorf("%s: weight %d is %+v, the SPEC's is %+v", js, i, g, w)
			}
			if g.Quantisable != (w.Matmul || w.Name == EmbeddingsName) {
				t.Errorf("%s: %s: quantisable %v", js, g.Name, g.Quantisable)
			}
			if n := c.WeightName(g.ID, layerOf(g.Name)); n != g.Name {
				t.Errorf("%s: WeightName(%d) = %q, want %q", js, g.ID, n, g.Name)
			}
		}
	}
}

// layerOf is the layer index in a layer weight's name (0 for the others).
func layerOf(name string) int {
	var l int
	fmt.Sscanf(strings.TrimPrefix(name, "backbone.layers."), "%d.", &l)
	return l
}

// TestTable checks the table's form: every row filled at its ID, with a
// role and a reader, the layer rows contiguous, and every dimension in the
// SPEC's notation.
func TestTable(t *testing.T) {
	c := &Config{Memory: &Memory{}}
	first, last := -1, -1
	for id, s := range Table {
		if s.ID != WeightID(id) || s.Name == "" || s.Role == "" || s.Reader == 0 || len(s.Shape) == 0 {
			t.Errorf("row %d: %+v", id, s)
		}
		for _, x := range s.Shape {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s: %v", s.Name, r)
					}
				}()
				c.Dim(x)
			}()
		}
		if s.PerLayer() {
			if first < 0 {
				first = id
			}
			if last >= 0 && last != id-1 {
				t.Errorf("%s: the layer rows are not contiguous", s.Name)
			}
			last = id
		}
		if s.Quantisable && len(s.Shape) != 2 {
			t.Errorf("%s: quantisable but not a matrix", s.Name)
		}
	}
	if _, ok := (&Config{ModelType: TypeMamba, NumLayers: 2, UseBias: false}).Weight(WInProjBias, 0); ok {
		t.Error("in_proj.bias called for without use_bias")
	}
}
