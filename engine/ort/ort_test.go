//go:build cgo

package ort

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/memmamba/memmamba/onnxgraph"
)

var (
	initOnce        sync.Once
	initErr         error
	ortRan, ortSkip atomic.Int32
)

// TestMain reports how many ONNX Runtime tests ran and how many were
// skipped for want of the library, so CI logs show the ORT half ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if ran, skipped := ortRan.Load(), ortSkip.Load(); ran+skipped > 0 {
		fmt.Printf("engine/ort: %d ONNX Runtime tests ran, %d skipped", ran, skipped)
		if skipped > 0 {
			fmt.Printf(" (%v)", initErr)
		}
		fmt.Println()
	}
	os.Exit(code)
}

// needORT initialises ONNX Runtime or skips the test, saying how to
// install it.
func needORT(t testing.TB) {
	t.Helper()
	initOnce.Do(func() {
		var lib string
		lib, initErr = FindLibrary("", "")
		if initErr == nil {
			initErr = Init(lib)
		}
	})
	if errors.Is(initErr, ErrNotInstalled) {
		ortSkip.Add(1)
		t.Skipf("ONNX Runtime tests skipped: %v", initErr)
	}
	ortRan.Add(1)
	if initErr != nil {
		t.Fatal(initErr)
	}
}

func randFloats(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// matmulRef is y[m][n] = sum_k x[m][k] * w[n][k] (w as nn.Linear stores it),
// accumulated in float64.
func matmulRef(x, w []float32, m, k, n int) []float32 {
	y := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(x[i*k+l]) * float64(w[j*k+l])
			}
			y[i*n+j] = float32(s)
		}
	}
	return y
}

func compare(t *testing.T, what string, got, want []float32, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > atol+rtol*math.Abs(float64(want[i])) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %g, want %g (diff %g)", what, i, got[i], want[i], d)
		}
	}
}

func TestVersion(t *testing.T) {
	needORT(t)
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ONNX Runtime %s", v)
	if err := Init("/some/other/lib.so"); err == nil || !strings.Contains(err.Error(), "already initialised") {
		t.Errorf("Init with another path: %v, want an error", err)
	}
}

// mlpModel is sigmoid(x·wᵀ + b) with w [n, k] transposed into a MatMul
// initializer [k, n].
func mlpModel(t *testing.T, w, bias []float32, k, n int) []byte {
	t.Helper()
	wt := make([]float32, k*n)
	for j := 0; j < n; j++ {
		for l := 0; l < k; l++ {
			wt[l*n+j] = w[j*k+l]
		}
	}
	b := onnxgraph.NewBuilder("mlp")
	x := b.Input("x", onnxgraph.Float, onnxgraph.Sym("batch"), onnxgraph.D(int64(k)))
	wn := b.InitFloat32("w", []int64{int64(k), int64(n)}, wt)
	bn := b.InitFloat32("b", []int64{int64(n)}, bias)
	b.Output(b.Rename(b.Sigmoid(b.Add(b.MatMul(x, wn), bn)), "y"), onnxgraph.Float, onnxgraph.Sym("batch"), onnxgraph.D(int64(n)))
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mlpRef(x, w, bias []float32, m, k, n int) []float32 {
	y := matmulRef(x, w, m, k, n)
	for i := range y {
		y[i] = float32(1 / (1 + math.Exp(-float64(y[i]+bias[i%n]))))
	}
	return y
}

func TestMLP(t *testing.T) {
	needORT(t)
	const k, n = 24, 10
	w, bias := randFloats(1, n*k), randFloats(2, n)
	model := mlpModel(t, w, bias, k, n)
	for _, opts := range []Options{
		{IntraOpThreads: 1},
		{IntraOpThreads: 2, DisablePrepacking: true},
	} {
		s, err := NewSession(model, []string{"x"}, []string{"y"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []int{1, 3, 17} {
			x := randFloats(uint64(10+m), m*k)
			out, err := s.Run(Tensor{Shape: []int64{int64(m), k}, Data: x})
			if err != nil {
				t.Fatal(err)
			}
			if got := out[0].Shape; len(got) != 2 || got[0] != int64(m) || got[1] != n {
				t.Fatalf("output shape %v", got)
			}
			compare(t, "mlp", out[0].Data, mlpRef(x, w, bias, m, k, n), 1e-6, 1e-5)

			// RunInto writes into the caller's buffer; guard values after
			// the output must stay.
			buf := make([]float32, m*n+4)
			for i := range buf {
				buf[i] = 12345
			}
			if err := s.RunInto([]Tensor{{Shape: []int64{int64(m), k}, Data: x}},
				[]Tensor{{Shape: []int64{int64(m), n}, Data: buf[:m*n]}}); err != nil {
				t.Fatal(err)
			}
			compare(t, "mlp RunInto", buf[:m*n], out[0].Data, 0, 0)
			for _, g := range buf[m*n:] {
				if g != 12345 {
					t.Fatalf("RunInto wrote past its output: %v", buf[m*n:])
				}
			}
		}
		if _, err := s.Run(Tensor{Shape: []int64{2, k}, Data: make([]float32, 3)}); err == nil {
			t.Error("Run with a short input succeeded")
		}
		if _, err := s.Run(); err == nil {
			t.Error("Run with no inputs succeeded")
		}
		if _, err := s.Run(Tensor{Shape: []int64{2, k + 1}, Data: make([]float32, 2*(k+1))}); err == nil {
			t.Error("Run with a wrong inner dimension succeeded")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMatMulNBits runs com.microsoft MatMulNBits on int4 and int8 blocks and
// compares with the dequantised weights multiplied in Go.
func TestMatMulNBits(t *testing.T) {
	needORT(t)
	tests := []struct {
		bits, block, n, k, m int
	}{
		{4, 32, 16, 64, 1},
		{4, 32, 8, 96, 5},
		{4, 16, 7, 40, 3}, // K not a multiple of the block
		{4, 128, 4, 256, 2},
		{8, 32, 16, 64, 1},
		{8, 32, 9, 48, 4},
	}
	for _, tc := range tests {
		q, err := onnxgraph.QuantizeNBits(randFloats(uint64(tc.n*tc.k), tc.n*tc.k), tc.n, tc.k, tc.bits, tc.block)
		if err != nil {
			t.Fatal(err)
		}
		w, err := q.Dequantize()
		if err != nil {
			t.Fatal(err)
		}
		b := onnxgraph.NewBuilder("nbits")
		x := b.Input("x", onnxgraph.Float, onnxgraph.Sym("m"), onnxgraph.D(int64(tc.k)))
		b.Output(b.Rename(b.MatMulNBits(x, "proj", q), "y"), onnxgraph.Float, onnxgraph.Sym("m"), onnxgraph.D(int64(tc.n)))
		model, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, prepack := range []bool{true, false} {
			s, err := NewSession(model, []string{"x"}, []string{"y"}, Options{IntraOpThreads: 1, DisablePrepacking: !prepack})
			if err != nil {
				t.Fatalf("bits %d block %d: %v", tc.bits, tc.block, err)
			}
			xs := randFloats(99, tc.m*tc.k)
			out, err := s.Run(Tensor{Shape: []int64{int64(tc.m), int64(tc.k)}, Data: xs})
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "MatMulNBits", out[0].Data, matmulRef(xs, w, tc.m, tc.k, tc.n), 1e-4, 1e-4)
		}
	}
}

// TestExternalData puts a weight in another file at a page-aligned offset
// and loads it both from a model file (locations relative to its folder)
// and from model bytes with ExternalDataDir.
func TestExternalData(t *testing.T) {
	needORT(t)
	const k, n, off = 16, 8, 8192
	w, bias := randFloats(3, n*k), randFloats(4, n)
	wt := make([]float32, k*n)
	for j := 0; j < n; j++ {
		for l := 0; l < k; l++ {
			wt[l*n+j] = w[j*k+l]
		}
	}
	raw := onnxgraph.Float32Bytes(wt)
	dir := t.TempDir()
	blob := make([]byte, off+len(raw)+100)
	copy(blob[off:], raw)
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	b := onnxgraph.NewBuilder("ext")
	x := b.Input("x", onnxgraph.Float, onnxgraph.D(2), onnxgraph.D(k))
	wn := b.InitExternal("w", onnxgraph.Float, []int64{k, n}, onnxgraph.ExternalData{Location: "weights.bin", Offset: off, Length: int64(len(raw))})
	bn := b.InitFloat32("b", []int64{n}, bias)
	b.Output(b.Rename(b.Sigmoid(b.Add(b.MatMul(x, wn), bn)), "y"), onnxgraph.Float, onnxgraph.D(2), onnxgraph.D(n))
	model, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	xs := randFloats(5, 2*k)
	want := mlpRef(xs, w, bias, 2, k, n)

	fromFile, err := NewSessionFromFile(path, []string{"x"}, []string{"y"}, Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Close()
	out, err := fromFile.Run(Tensor{Shape: []int64{2, k}, Data: xs})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "external from file", out[0].Data, want, 1e-6, 1e-5)

	fromBytes, err := NewSession(model, []string{"x"}, []string{"y"}, Options{IntraOpThreads: 1, ExternalDataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Close()
	out, err = fromBytes.Run(Tensor{Shape: []int64{2, k}, Data: xs})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "external from bytes", out[0].Data, want, 1e-6, 1e-5)

	// Without the folder, a session from bytes cannot find the file.
	if s, err := NewSession(model, []string{"x"}, []string{"y"}, Options{}); err == nil {
		s.Close()
		t.Log("note: session from bytes found external data without ExternalDataDir (resolved against the working directory?)")
	}
}

func TestBadModel(t *testing.T) {
	needORT(t)
	if _, err := NewSession([]byte("not a model"), []string{"x"}, []string{"y"}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "model bytes") {
		t.Errorf("garbage model: %v", err)
	}
	if _, err := NewSession(nil, []string{"x"}, []string{"y"}, Options{}); err == nil {
		t.Error("empty model accepted")
	}
	model := mlpModel(t, randFloats(1, 8), randFloats(2, 2), 4, 2)
	// onnxruntime_go checks names when running, not at creation.
	if s, err := NewSession(model, []string{"nope"}, []string{"y"}, Options{}); err == nil {
		if _, err := s.Run(Tensor{Shape: []int64{1, 4}, Data: make([]float32, 4)}); err == nil {
			t.Error("run with an unknown input name succeeded")
		}
		s.Close()
	}
	if _, err := NewSession(model, []string{"x"}, []string{"y"}, Options{IntraOpThreads: -1}); err == nil {
		t.Error("negative thread count accepted")
	}
	if _, err := NewSession(model, []string{"x"}, []string{"y"}, Options{Config: map[string]string{"session.no_such_key": "1"}}); err != nil {
		t.Logf("unknown config key refused: %v", err)
	}
}
