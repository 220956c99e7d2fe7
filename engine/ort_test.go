package engine_test

// The ONNX Runtime backend's tests: an external test package, because they
// import engine/ortbackend, which imports engine. The internal tests'
// helpers they use are exported to them by export_test.go.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/engine/ort"
	"github.com/memmamba/memmamba/engine/ortbackend"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// ortOrSkip skips the test, saying how to install ONNX Runtime, when the
// library is not there (or the binary has no cgo).
func ortOrSkip(t *testing.T) {
	t.Helper()
	if _, err := ort.FindLibrary("", ""); err != nil {
		t.Skipf("ONNX Runtime backend not tested: %v", err)
	}
	if !ort.Available {
		t.Skip("ONNX Runtime backend not tested: built without cgo")
	}
}

func openBackend(t *testing.T, path, backend string) *engine.Model {
	t.Helper()
	m, err := engine.Open(path, engine.Options{Threads: 2, Backend: backend, BackendOptions: ortbackend.Options{Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// runMode returns every position's logits and the trace, by one prefill or
// by steps.
func runMode(t *testing.T, m *engine.Model, tokens []int, step bool) ([][]float32, *engine.Trace) {
	t.Helper()
	s := m.NewSession()
	tr := &engine.Trace{}
	s.SetTrace(tr)
	var out [][]float32
	if step {
		for _, tok := range tokens {
			l, err := s.Step(tok)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, slices.Clone(l))
		}
		return out, tr
	}
	if err := s.PrefillAll(tokens, func(_ int, l []float32) error {
		out = append(out, slices.Clone(l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out, tr
}

// TestORTMatrix is the cross-runtime parity matrix: every fixture x {f32,
// f16, int8, int4} x {prefill, step} on ONNX Runtime, against the PyTorch
// golden outputs (f32) and against the native backend on the same file:
// within SPEC.md's bound with identical Note Block decisions for f32, within
// the quantised types' bounds (TestQuantisedTypes) otherwise.
func TestORTMatrix(t *testing.T) {
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	ran, skipped := 0, 0
	defer func() { fmt.Printf("ORT matrix: %d cases ran, %d skipped\n", ran, skipped) }()
	for _, name := range names {
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0} {
			for _, step := range []bool{false, true} {
				mode := map[bool]string{false: "prefill", true: "step"}[step]
				t.Run(fmt.Sprintf("%s/%s/%s", name, typ, mode), func(t *testing.T) {
					if _, err := ort.FindLibrary("", ""); err != nil || !ort.Available {
						skipped++
					}
					ortOrSkip(t)
					g, err := fixtures.Load(name)
					if err != nil {
						t.Fatal(err)
					}
					path := engine.ConvertFixture(t, name, typ)
					native := openBackend(t, path, "native")
					onnx := openBackend(t, path, "ort")
					nl, nt := runMode(t, native, g.Tokens, step)
					ol, ot := runMode(t, onnx, g.Tokens, step)
					if typ == quant.F32 {
						engine.CompareLogits(t, "ort vs reference", ol, g)
						engine.CompareTrace(t, "ort vs reference", ot, g)
						for i := range nl {
							for v := range nl[i] {
								if !engine.Within(ol[i][v], nl[i][v]) {
									t.Fatalf("position %d logit %d: ort %v, native %v", i, v, ol[i][v], nl[i][v])
								}
							}
						}
						if f := engine.DecisionFlips(nt, ot); f != 0 {
							t.Errorf("%d Note Block decisions differ between ort and native", f)
						}
					} else {
						bKL, bTop1Clear := engine.QuantBound(typ)
						meanKL, top1, top1Clear := engine.Divergence(nl, ol)
						if meanKL > bKL || top1Clear < bTop1Clear {
							t.Errorf("ort vs native: mean KL %.2e, clear top-1 %.3f; bounds %.0e, %.2f", meanKL, top1Clear, bKL, bTop1Clear)
						}
						t.Logf("ort vs native: mean KL %.2e, top-1 %.3f, %d decisions differ", meanKL, top1, engine.DecisionFlips(nt, ot))
					}
					ran++
				})
			}
		}
	}
}

// TestORTMissingLibrary: --backend ort without the library fails with one
// sentence that says how to install it.
func TestORTMissingLibrary(t *testing.T) {
	path := engine.ConvertFixture(t, "mamba-tiny", quant.F32)
	_, err := engine.Open(path, engine.Options{Backend: "ort", BackendOptions: ortbackend.Options{Lib: "/nonexistent/libonnxruntime.so.1"}})
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ort.ErrNotInstalled) && ort.Available {
		t.Errorf("error %v does not wrap ErrNotInstalled", err)
	}
	t.Log(err)
	if _, err := engine.Open(path, engine.Options{Backend: "cuda"}); err == nil {
		t.Error("unknown backend accepted")
	}
}

var _ = math.Abs

// TestORTGraphsCheck writes the graphs the backend builds and runs ONNX's
// own checker (Debian's python3-onnx) on each, as an independent check of
// the protobuf writer and of the graphs.
func TestORTGraphsCheck(t *testing.T) {
	ortOrSkip(t)
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import onnx").Run(); err != nil {
		t.Skip("python3-onnx is not installed (make deps installs it)")
	}
	for _, tc := range []struct {
		name string
		typ  quant.Type
	}{{"memmamba-priority", quant.Q8_0}, {"mamba-bias-untied", quant.F32}, {"memmamba-bf16", quant.Q4_0}, {"memmamba-fifo", quant.F16}} {
		dir := t.TempDir()
		model := engine.ConvertFixture(t, tc.name, tc.typ)
		// The graphs name the model file relative to their folder.
		if err := os.Symlink(model, filepath.Join(dir, filepath.Base(model))); err != nil {
			t.Fatal(err)
		}
		m, err := engine.Open(model, engine.Options{Backend: "ort", BackendOptions: ortbackend.Options{DumpDir: dir}})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		script := `import glob, sys, onnx
n = 0
for p in sorted(glob.glob(sys.argv[1] + "/*.onnx")):
    m = onnx.load(p, load_external_data=False)
    onnx.checker.check_model(m)
    n += 1
print(n)`
		cmd := exec.Command("/usr/bin/python3", "-c", script, dir)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: onnx.checker: %v\n%s", tc.name, tc.typ, err, out)
		}
		t.Logf("%s %s: onnx.checker accepts %s graphs", tc.name, tc.typ, strings.TrimSpace(string(out)))
	}
}

// TestBatchORT runs a batched schedule on the ONNX Runtime backend, which
// steps a batch's sessions one after another: the same results as alone.
func TestBatchORT(t *testing.T) {
	ortOrSkip(t)
	for _, name := range []string{"memmamba-priority", "mamba-bias-untied"} {
		t.Run(name, func(t *testing.T) {
			m := openBackend(t, engine.ConvertFixture(t, name, quant.F32), "ort")
			engine.RunSchedule(t, m, 5, 6)
		})
	}
}

// TestFalconORT: on ONNX Runtime (whose ssm graph has the norms,
// graphs.normDBC) a batched schedule of falcon-mamba-tiny equals each
// session alone; TestORTMatrix compares it with the golden outputs.
func TestFalconORT(t *testing.T) {
	ortOrSkip(t)
	m := openBackend(t, engine.ConvertFixture(t, "falcon-mamba-tiny", quant.F32), "ort")
	engine.RunSchedule(t, m, 5, 6)
}
