package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/quant"
)

func TestCheckLogits(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		logits []float32
		want   string // "" for no error
	}{
		{[]float32{0, -3, 1e30, -1e30}, ""},
		{nil, ""},
		{[]float32{0, nan, 1}, "the logits after position 7 are not finite (entry 1 of 3 is NaN)"},
		{[]float32{inf}, "entry 0 of 1 is +Inf"},
		{[]float32{1, 2, -inf}, "entry 2 of 3 is -Inf"},
	} {
		err := checkLogits(tc.logits, 7)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.logits, err, tc.want)
		}
	}
}

// nanNormModel writes a copy of the f32 model file src whose norm_f has
// one NaN (entry 3), with the format's writer (so its checksums are right).
func nanNormModel(t *testing.T, src string) string {
	t.Helper()
	f, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := f.Header
	h.Tensors = nil
	var plan []format.TensorSpec
	for _, ts := range f.Tensors() {
		plan = append(plan, format.TensorSpec{Name: ts.Name, Type: ts.Type, Shape: ts.Shape})
	}
	out := filepath.Join(t.TempDir(), "nan-norm.mmq")
	w, err := format.Create(out, h, plan, format.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	found := false
	for _, ts := range f.Tensors() {
		data := bytes.Clone(ts.Data)
		if ts.Name == arch.NormFName {
			if ts.Type != quant.F32 {
				t.Fatalf("%s is %v, want f32", ts.Name, ts.Type)
			}
			binary.LittleEndian.PutUint32(data[4*3:], math.Float32bits(float32(math.NaN())))
			found = true
		}
		if err := w.WriteTensor(ts.Name, data); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("%s has no %s", src, arch.NormFName)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNaNLogits runs every command that samples or scores on a model
// whose norm_f holds one NaN: each must exit 1 with the sentence of
// checkLogits, and print no text made from the NaN logits.
func TestNaNLogits(t *testing.T) {
	model := nanNormModel(t, convertFixture(t, "mamba-tiny", "f32"))
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte("In the beginning"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"generate", []string{"generate", "-m", model, "-p", "The", "-n", "5", "--temp", "0", "--ignore-eos"}, "the logits after position 2 are not finite"},
		{"generate sampled", []string{"generate", "-m", model, "-p", "x", "-n", "5", "--seed", "1", "--ignore-eos"}, "the logits after position 0 are not finite"},
		{"logits", []string{"logits", "-m", model, "--ids", "1 2 3", "--out", filepath.Join(dir, "l.npy")}, "the logits after position 0 are not finite"},
		{"logits --step", []string{"logits", "-m", model, "--ids", "1 2 3", "--step", "--out", filepath.Join(dir, "l.npy")}, "the logits after position 0 are not finite"},
		{"score", []string{"score", "-m", model, text, "-q"}, "text.txt: the logits after position 0 are not finite"},
		{"passkey", []string{"passkey", "-m", model, "--lengths", "128", "--trials", "1"}, "are not finite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cmd(t, "", "mmrun", tc.args...)
			t.Log(strings.TrimSpace(errOut))
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "entry ") {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, errOut, tc.want)
			}
			if strings.ContainsRune(out, 0) {
				t.Errorf("stdout holds NUL bytes: %q", out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "l.npy")); err == nil {
		t.Error("mmrun logits wrote its output from NaN logits")
	}
}
