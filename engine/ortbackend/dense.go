package ortbackend

import (
	"errors"
	"fmt"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/engine/ort"
)

// ortDense is one session's view of the ONNX Runtime backend: it carries
// the next layer's xz and the Note Block's results from the fused graph
// that computed them to the call that asks for them.
type ortDense struct {
	b      *backend
	xzNext []float32
	xzOK   bool
	r      []float32
	nd     engine.NoteDense
	ndOK   bool
}

// NewDense returns the dense blocks of one pass.
func (b *backend) NewDense() engine.DenseBlocks { return &ortDense{b: b} }

func t2(data []float32, T, w int) ort.Tensor {
	return ort.Tensor{Shape: []int64{int64(T), int64(w)}, Data: data[:T*w]}
}

// run runs s, panicking on failure: an ONNX Runtime error at this point is
// a bug (the shapes are the graph's own), and the panic carries it.
func run(s *ort.Session, in, out []ort.Tensor) {
	if err := s.RunInto(in, out); err != nil {
		panic(fmt.Errorf("ONNX Runtime: %w", err))
	}
}

func (o *ortDense) MixerIn(l int, xz, x []float32, T int) {
	c := o.b.m.Config
	if l == 0 {
		run(o.b.in0, []ort.Tensor{t2(x, T, c.HiddenSize)}, []ort.Tensor{t2(xz, T, 2*c.Intermediate)})
		return
	}
	if !o.xzOK {
		panic(errors.New("ONNX Runtime backend: layer input not prepared"))
	}
	copy(xz, o.xzNext[:T*2*c.Intermediate])
	o.xzOK = false
}

func (o *ortDense) SSMIn(l int, dbc, dt, a1 []float32, T int) {
	c := o.b.m.Config
	run(o.b.ssm[l], []ort.Tensor{t2(a1, T, c.Intermediate)},
		[]ort.Tensor{t2(dbc, T, c.TimeStepRank+2*c.StateSize), t2(dt, T, c.Intermediate)})
}

func (o *ortDense) MixerOut(l int, mix, x, y, prevM []float32, T int) {
	c := o.b.m.Config
	d, E := c.HiddenSize, c.Intermediate
	o.r = grow(&o.r, T*d)
	ins := []ort.Tensor{t2(y, T, E), t2(x, T, d)}
	outs := []ort.Tensor{t2(mix, T, d), t2(o.r, T, d)}
	if !c.IsMemMamba() {
		if l+1 < c.NumLayers {
			o.xzNext = grow(&o.xzNext, T*2*E)
			outs = append(outs, t2(o.xzNext, T, 2*E))
			o.xzOK = true
		}
		run(o.b.out[l], ins, outs)
		copy(x, o.r)
		return
	}
	mem := c.Memory
	ins = append(ins, ort.Tensor{Shape: []int64{1, int64(d)}, Data: prevM})
	nd := &o.nd
	nd.Imp = grow(&nd.Imp, T)
	nd.Gate = grow(&nd.Gate, T)
	nd.Summ = grow(&nd.Summ, T*mem.SummaryDim)
	nd.QTok = grow(&nd.QTok, T*mem.AttnDim)
	outs = append(outs, t2(nd.Imp, T, 1), t2(nd.Gate, T, 1), t2(nd.Summ, T, mem.SummaryDim), t2(nd.QTok, T, mem.AttnDim))
	if c.HasCrossLayer(l) {
		nd.QLay = grow(&nd.QLay, T*mem.AttnDim)
		outs = append(outs, t2(nd.QLay, T, mem.AttnDim))
	}
	run(o.b.out[l], ins, outs)
	copy(x, o.r)
	o.ndOK = true
}

func (o *ortDense) NoteIn(l int, nd *engine.NoteDense, r, prev []float32, T int) {
	if !o.ndOK {
		panic(errors.New("ONNX Runtime backend: Note Block inputs not prepared"))
	}
	copy(nd.Imp, o.nd.Imp)
	copy(nd.Gate, o.nd.Gate)
	copy(nd.Summ, o.nd.Summ)
	copy(nd.QTok, o.nd.QTok)
	if nd.QLay != nil {
		copy(nd.QLay, o.nd.QLay)
	}
	o.ndOK = false
}

func (o *ortDense) NoteOut(l int, r, oTok, oLay, sTok, sLay []float32, T int) {
	c := o.b.m.Config
	d, A, E := c.HiddenSize, c.Memory.AttnDim, c.Intermediate
	ins := []ort.Tensor{t2(r, T, d), t2(oTok, T, A), t2(sTok, T, 1)}
	if sLay != nil {
		ins = append(ins, t2(oLay, T, A), t2(sLay, T, 1))
	}
	o.r = grow(&o.r, T*d)
	outs := []ort.Tensor{t2(o.r, T, d)}
	if l+1 < c.NumLayers {
		o.xzNext = grow(&o.xzNext, T*2*E)
		outs = append(outs, t2(o.xzNext, T, 2*E))
		o.xzOK = true
	}
	run(o.b.note[l], ins, outs)
	copy(r, o.r)
}

func (o *ortDense) Logits(out, x []float32, n int) {
	c := o.b.m.Config
	run(o.b.head, []ort.Tensor{t2(x, n, c.HiddenSize)}, []ort.Tensor{t2(out, n, c.VocabSize)})
}

// grow returns *p resized to n values, growing it when needed.
func grow(p *[]float32, n int) []float32 {
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return *p
}
