package interop

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/internal/npy"
	"github.com/memmamba/memmamba/quant"
)

// mmllamaPath is the test driver that scripts/install-llamacpp.sh builds
// against llama.cpp's libraries.
func mmllamaPath() string {
	return filepath.Join(fixtures.Dir(), "..", "..", "third_party", "llama.cpp", "bin", "mmllama")
}

// llamaInstalled reports whether mmllama is there.
func llamaInstalled() bool {
	st, err := os.Stat(mmllamaPath())
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// llamaOrSkip skips the test when llama.cpp is not installed.
func llamaOrSkip(t *testing.T) {
	t.Helper()
	if !llamaInstalled() {
		t.Skipf("llama.cpp is not installed (no %s): run make llamacpp (scripts/install-llamacpp.sh)", mmllamaPath())
	}
}

// llamaOut is what one mmllama run printed.
type llamaOut struct {
	vocab, ftype int
	desc         string
	generated    []int
	tokens       []int
	logits       [][]float32
	stderr       string
}

// runLlama runs mmllama on a GGUF file with args; a failure is fatal and
// shows llama.cpp's messages.
func runLlama(t *testing.T, model string, args ...string) llamaOut {
	t.Helper()
	out, err := tryLlama(model, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryLlama runs mmllama; the error carries its stderr.
func tryLlama(model string, args ...string) (llamaOut, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mmllamaPath(), append([]string{model}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	o := llamaOut{vocab: -1, ftype: -1}
	if err := cmd.Run(); err != nil {
		o.stderr = se.String()
		return o, fmt.Errorf("mmllama %s %s: %v\n%s", filepath.Base(model), strings.Join(args, " "), err, se.String())
	}
	o.stderr = se.String()
	for _, line := range strings.Split(so.String(), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "vocab":
			o.vocab, _ = strconv.Atoi(val)
		case "ftype":
			o.ftype, _ = strconv.Atoi(val)
		case "desc":
			o.desc = val
		case "generated", "tokens":
			var ids []int
			for _, f := range strings.Fields(val) {
				id, err := strconv.Atoi(f)
				if err != nil {
					return o, fmt.Errorf("mmllama printed %q", line)
				}
				ids = append(ids, id)
			}
			if key == "generated" {
				o.generated = ids
			} else {
				o.tokens = ids
			}
		}
	}
	return o, nil
}

// llamaLogits runs the prompt in llama.cpp and returns every position's
// logits and the greedy continuation of gen tokens.
func llamaLogits(t *testing.T, model string, ids []int, gen int) llamaOut {
	t.Helper()
	npyPath := filepath.Join(t.TempDir(), "logits.npy")
	o := runLlama(t, model, idsArg(ids), "-logits", npyPath, "-generate", strconv.Itoa(gen))
	shape, data, err := npy.ReadFile(npyPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != len(ids) || shape[1] != o.vocab {
		t.Fatalf("llama.cpp logits of shape %v, want [%d %d]", shape, len(ids), o.vocab)
	}
	for i := range shape[0] {
		o.logits = append(o.logits, data[i*shape[1]:(i+1)*shape[1]])
	}
	return o
}

// idsArg joins ids with commas.
func idsArg(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

// checkCleanLoad fails on the loader messages of a GGUF that llama.cpp
// accepts only with degraded or guessed metadata.
func checkCleanLoad(t *testing.T, o llamaOut) {
	t.Helper()
	for _, bad := range []string{"missing pre-tokenizer", "GENERATION QUALITY", "cannot find tokenizer merges", "bad special token", "unknown pre-tokenizer"} {
		if strings.Contains(o.stderr, bad) {
			t.Errorf("llama.cpp says %q:\n%s", bad, o.stderr)
		}
	}
}

// exportPair writes src as a GGUF and as a model file of type typ.
func exportPair(t *testing.T, src string, typ quant.Type) (gg, mmq string) {
	t.Helper()
	dir := t.TempDir()
	gg, mmq = filepath.Join(dir, "model.gguf"), filepath.Join(dir, "model.mmq")
	opts := convert.Options{Policy: convert.Policy{Type: typ}}
	if _, err := convert.ConvertToGGUF(src, gg, opts); err != nil {
		t.Fatalf("%s to GGUF %s: %v", src, typ, err)
	}
	if _, err := convert.Convert(src, mmq, opts); err != nil {
		t.Fatalf("%s to a model file %s: %v", src, typ, err)
	}
	return gg, mmq
}

// runtimeRun returns the project's logits of every position of tokens
// (Session.PrefillAll) and its greedy continuation of gen tokens.
func runtimeRun(t *testing.T, mmq string, tokens []int, gen int) ([][]float32, []int) {
	t.Helper()
	m, err := engine.Open(mmq, engine.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := m.NewSession()
	var all [][]float32
	if err := s.PrefillAll(tokens, func(i int, l []float32) error {
		all = append(all, slices.Clone(l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var greedy []int
	last := all[len(all)-1]
	for range gen {
		next := argmax(last)
		greedy = append(greedy, next)
		if len(greedy) == gen {
			break
		}
		l, err := s.Step(next)
		if err != nil {
			t.Fatal(err)
		}
		last = slices.Clone(l)
	}
	return all, greedy
}

// argmax is the first index of the largest value (mmllama's rule).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// maxDiff compares llama.cpp's logits with the runtime's: it returns the
// largest |a-b| and the first position, id and values outside
// atol + rtol*|runtime|.
func maxDiff(a, b [][]float32, atol, rtol float64) (float64, string) {
	worst, bad := 0.0, ""
	for i := range b {
		for v := range b[i] {
			d := math.Abs(float64(a[i][v]) - float64(b[i][v]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			worst = max(worst, d)
			if d > atol+rtol*math.Abs(float64(b[i][v])) && bad == "" {
				bad = fmt.Sprintf("position %d id %d: llama.cpp %v, runtime %v", i, v, a[i][v], b[i][v])
			}
		}
	}
	return worst, bad
}

// Tolerances of llama.cpp's logits against the runtime's on files of the
// same type. At f32 both compute in float32 from the same weights. At the
// other types llama.cpp's CPU matmuls also round the activations (to f16 or
// bf16 like the weights, to Q8_0 blocks for Q8_0 and Q4_0 weights), which
// the runtime does not: the bound there only catches a wrong tensor, and
// the greedy text is the test.
var tolerances = map[quant.Type][2]float64{
	quant.F32:  {1e-4, 1e-4},
	quant.F16:  {5e-2, 5e-2},
	quant.BF16: {2e-1, 1e-1},
	quant.Q8_0: {2e-1, 1e-1},
	quant.Q4_0: {4e-1, 2e-1},
}

// matrixStats gathers the largest differences the matrix measured, per type.
var matrixStats = struct {
	sync.Mutex
	worst map[quant.Type]float64
}{worst: map[quant.Type]float64{}}

// TestLlamaCppMatrix exports every plain Mamba fixture, the Falcon-Mamba
// fixture (with llama.cpp's eps for the dt/B/C norms: llamaSource) and
// trained Mamba model at f32, f16, int8, bf16 and int4 with the Go API
// (what mmconvert --to gguf does), loads each file in llama.cpp, and
// compares: the file type llama.cpp
// reports, a load without tokenizer warnings, every position's logits
// against the runtime on the model file of the same type (f32: within
// 1e-4 + 1e-4|x|), and, on the trained models at every type, the greedy
// continuation token for token. It prints how many cases ran and skipped
// and the largest difference per type.
func TestLlamaCppMatrix(t *testing.T) {
	names := []string{"mamba-tiny", "mamba-ssm", "mamba-fp16", "falcon-mamba-tiny", "trained/mamba-kjv", "trained/mamba-passkey"}
	types := []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.BF16, quant.Q4_0}
	wantFtype := map[quant.Type]int{quant.F32: 0, quant.F16: 1, quant.Q8_0: 7, quant.BF16: 32, quant.Q4_0: 2}
	wantDesc := map[quant.Type]string{quant.F32: "all F32", quant.F16: "F16", quant.Q8_0: "Q8_0", quant.BF16: "BF16", quant.Q4_0: "Q4_0"}
	ran, skipped := 0, 0
	defer func() {
		fmt.Printf("llama.cpp matrix: %d cases ran, %d skipped", ran, skipped)
		for _, typ := range types {
			if w, ok := matrixStats.worst[typ]; ok {
				fmt.Printf("; %s max |llama.cpp - runtime| %.3g", typ, w)
			}
		}
		fmt.Println()
	}()
	for _, name := range names {
		for _, typ := range types {
			t.Run(name+"/"+typ.String(), func(t *testing.T) {
				if !llamaInstalled() {
					skipped++
				}
				llamaOrSkip(t)
				ran++
				g, err := fixtures.Load(name)
				if err != nil {
					t.Fatal(err)
				}
				gen := 0
				if strings.HasPrefix(name, "trained/") {
					gen = 32
				}
				gg, mmq := exportPair(t, llamaSource(t, name, g), typ)
				lo := llamaLogits(t, gg, g.Tokens, max(gen, 1))
				checkCleanLoad(t, lo)
				if lo.ftype != wantFtype[typ] || !strings.HasSuffix(lo.desc, " "+wantDesc[typ]) {
					t.Errorf("llama.cpp reports file type %d %q, want %d %q", lo.ftype, lo.desc, wantFtype[typ], wantDesc[typ])
				}
				rl, rg := runtimeRun(t, mmq, g.Tokens, gen)
				if lo.vocab != len(rl[0]) {
					t.Fatalf("llama.cpp vocabulary %d, the model's %d", lo.vocab, len(rl[0]))
				}
				tol := tolerances[typ]
				worst, bad := maxDiff(lo.logits, rl, tol[0], tol[1])
				matrixStats.Lock()
				matrixStats.worst[typ] = max(matrixStats.worst[typ], worst)
				matrixStats.Unlock()
				t.Logf("max |llama.cpp - runtime| = %.3g over %d x %d logits", worst, len(rl), len(rl[0]))
				if bad != "" {
					t.Errorf("logits differ beyond %g + %g|x| (max %.3g): %s", tol[0], tol[1], worst, bad)
				}
				if gen > 0 && !slices.Equal(lo.generated, rg) {
					t.Errorf("greedy continuation differs:\nllama.cpp %v\nruntime   %v", lo.generated, rg)
				}
			})
		}
	}
}

// TestLlamaCppTokenizes: llama.cpp's tokenization of each fixture's text,
// with the GGUF's vocabulary, merges and pre-tokenizer, is the golden one
// (byte-level models: the bytes; mamba-bias-untied: its GPT-NeoX-style BPE,
// written with its merges and pre-tokenizer "olmo", exported without its
// biases since llama.cpp's mamba has none).
func TestLlamaCppTokenizes(t *testing.T) {
	for _, name := range []string{"mamba-tiny", "mamba-bias-untied", "trained/mamba-kjv"} {
		t.Run(name, func(t *testing.T) {
			llamaOrSkip(t)
			g, err := fixtures.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			gg, _ := exportPair(t, g.Source(), quant.F32)
			if name == "mamba-bias-untied" {
				gg = withoutBiases(t, gg)
			}
			txt := filepath.Join(t.TempDir(), "text.txt")
			if err := os.WriteFile(txt, []byte(g.Text), 0o644); err != nil {
				t.Fatal(err)
			}
			o := runLlama(t, gg, "-tokenize", txt)
			checkCleanLoad(t, o)
			if !slices.Equal(o.tokens, g.Tokens) {
				t.Errorf("llama.cpp tokenizes %q as\n%v\nthe golden is\n%v", g.Text, o.tokens, g.Tokens)
			}
		})
	}
}

// TestLlamaCppRefusesBiases documents the one fixture llama.cpp cannot run:
// mamba-bias-untied has in_proj/out_proj biases (use_bias), which llama.cpp's
// mamba graph has no place for, so it refuses the file by its tensor count.
// Without the biases (withoutBiases) the file loads and its logits match the
// runtime on the same biasless weights.
func TestLlamaCppRefusesBiases(t *testing.T) {
	llamaOrSkip(t)
	g, err := fixtures.Load("mamba-bias-untied")
	if err != nil {
		t.Fatal(err)
	}
	gg, _ := exportPair(t, g.Source(), quant.F32)
	_, err = tryLlama(gg, "0")
	if err == nil || !strings.Contains(err.Error(), "wrong number of tensors") {
		t.Fatalf("llama.cpp on a Mamba with biases: %v, want its tensor count refusal", err)
	}
	stripped := withoutBiases(t, gg)
	mmq := filepath.Join(t.TempDir(), "stripped.mmq")
	if _, err := convert.Convert(stripped, mmq, convert.Options{Policy: convert.Policy{Type: quant.F32}}); err != nil {
		t.Fatal(err)
	}
	lo := llamaLogits(t, stripped, g.Tokens, 1)
	checkCleanLoad(t, lo)
	rl, _ := runtimeRun(t, mmq, g.Tokens, 0)
	if worst, bad := maxDiff(lo.logits, rl, 1e-4, 1e-4); bad != "" {
		t.Errorf("logits differ (max %.3g): %s", worst, bad)
	}
}
