package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/quant"
)

// fuzzModel is a small model file taken apart: its header (less the
// tensor table) and its tensors, to be written again under another
// configuration.
type fuzzModel struct {
	hdr     format.Header
	plan    []format.TensorSpec
	tensors [][]byte
}

func takeApart(t testing.TB, path string) fuzzModel {
	t.Helper()
	f, err := format.Open(path, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fm := fuzzModel{hdr: f.Header}
	fm.hdr.Tensors = nil
	for _, tt := range f.Tensors() {
		fm.plan = append(fm.plan, format.TensorSpec{Name: tt.Name, Type: tt.Type, Shape: slices.Clone(tt.Shape)})
		fm.tensors = append(fm.tensors, bytes.Clone(tt.Data))
	}
	return fm
}

// write writes the model under config c at path (replacing it).
func (fm *fuzzModel) write(path string, c *arch.Config) error {
	h := fm.hdr
	h.Config = *c
	w, err := format.Create(path, h, fm.plan, format.CreateOptions{Force: true})
	if err != nil {
		return err
	}
	defer w.Abort()
	for i, s := range fm.plan {
		if err := w.WriteTensor(s.Name, fm.tensors[i]); err != nil {
			return err
		}
	}
	return w.Commit()
}

// FuzzOpenModel gives engine.Open files whose header the model file's
// reader accepts but whose configuration is the fuzzer's (the config.json
// of the header, mutated, beside the real weights of a small Mamba and a
// small MemMamba): Open must refuse it with an error or give a model that
// runs, never panic or allocate without bound. What Open accepts is run:
// a prefill, a step, a save and a load.
func FuzzOpenModel(f *testing.F) {
	var models []fuzzModel
	for _, shape := range []string{"fuzz-state-mamba", "fuzz-state-memmamba"} {
		m := syntheticModel(f, shape, quant.F32)
		fm := takeApart(f, synthFiles[shape+"."+quant.F32.String()])
		models = append(models, fm)
		f.Add(m.Config.JSON())
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, cfg []byte) {
		c, err := arch.ParseConfig(cfg)
		if err != nil {
			return
		}
		for i := range models {
			path := filepath.Join(dir, "m.mmq")
			if err := models[i].write(path, c); err != nil {
				continue
			}
			m, err := Open(path, Options{Threads: 1, MaxMemory: 64 << 20})
			if err != nil {
				continue
			}
			s := m.NewSession()
			if _, err := s.Prefill([]int{1, 2, 3}); err != nil {
				t.Fatalf("prefill on an accepted model: %v", err)
			}
			if _, err := s.Step(4); err != nil {
				t.Fatalf("step on an accepted model: %v", err)
			}
			blob, err := s.Save()
			if err != nil {
				t.Fatalf("save on an accepted model: %v", err)
			}
			if err := m.NewSession().Load(blob); err != nil {
				t.Fatalf("load of its own blob: %v", err)
			}
			m.Close()
			os.Remove(path)
		}
	})
}
