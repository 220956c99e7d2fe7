package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/engine/ort"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/internal/npy"
	"github.com/memmamba/memmamba/sample"
)

// These tests build mmconvert and mmrun and run them as a user would.

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mmrun-e2e-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	out, err := exec.Command("go", "build", "-o", dir, "github.com/memmamba/memmamba/cmd/mmrun", "github.com/memmamba/memmamba/cmd/mmconvert").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the commands: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cmd runs a command and returns stdout, stderr and the exit code.
func cmd(t *testing.T, stdin string, name string, args ...string) (string, string, int) {
	t.Helper()
	c := exec.Command(filepath.Join(binDir, name), args...)
	var so, se bytes.Buffer
	c.Stdout, c.Stderr, c.Stdin = &so, &se, strings.NewReader(stdin)
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return so.String(), se.String(), code
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut, code := cmd(t, "", name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", name, strings.Join(args, " "), code, errOut)
	}
	return out
}

func convertFixture(t *testing.T, name, typ string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+"."+typ+".mmq")
	mustRun(t, "mmconvert", filepath.Join(fixtures.Dir(), name), "-o", out, "--type", typ, "-q")
	return out
}

func idsString(ids []int) string {
	s := make([]string, len(ids))
	for i, v := range ids {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, " ")
}

// TestLogitsAndTrace runs `mmrun logits` on fixtures (from ids and from
// text, prefill and step) and compares the .npy and the trace with the
// reference's golden files.
func TestLogitsAndTrace(t *testing.T) {
	for _, name := range []string{"memmamba-priority", "mamba-bias-untied"} {
		g, err := fixtures.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		model := convertFixture(t, name, "f32")
		for _, mode := range [][]string{{"--ids", idsString(g.Tokens)}, {"--text", g.Text, "--step"}} {
			dir := t.TempDir()
			args := append([]string{"logits", "-m", model, "--out", filepath.Join(dir, "l.npy"), "--trace", filepath.Join(dir, "t.json")}, mode...)
			mustRun(t, "mmrun", args...)
			shape, data, err := npy.ReadFile(filepath.Join(dir, "l.npy"))
			if err != nil {
				t.Fatal(err)
			}
			if len(shape) != 2 || shape[0] != len(g.Tokens) || shape[1] != len(g.Logits[0]) {
				t.Fatalf("%s: logits shape %v", name, shape)
			}
			for i, row := range g.Logits {
				for v, want := range row {
					if got := data[i*shape[1]+v]; math.Abs(float64(got-want)) > 1e-4+1e-4*math.Abs(float64(want)) {
						t.Fatalf("%s %s: logit [%d,%d] = %v, reference %v", name, mode[0], i, v, got, want)
					}
				}
			}
			var tr struct {
				Trace [][]fixtures.TraceEntry `json:"trace"`
			}
			b, _ := os.ReadFile(filepath.Join(dir, "t.json"))
			if err := json.Unmarshal(b, &tr); err != nil {
				t.Fatal(err)
			}
			if g.Trace != nil {
				for l := range g.Trace {
					for i, want := range g.Trace[l] {
						got := tr.Trace[l][i]
						if got.Note != want.Note || got.Retrieved != want.Retrieved || got.CrossLayer != want.CrossLayer || fmt.Sprint(got.Pool) != fmt.Sprint(want.Pool) {
							t.Fatalf("%s: trace layer %d token %d: %+v, reference %+v", name, l, i, got, want)
						}
					}
				}
			}
		}
	}
}

// TestGenerate checks greedy generation against the reference's argmax, and
// that a seed makes sampling reproducible.
func TestGenerate(t *testing.T) {
	g, err := fixtures.Load("mamba-bias-untied")
	if err != nil {
		t.Fatal(err)
	}
	model := convertFixture(t, "mamba-bias-untied", "int8")
	out := mustRun(t, "mmrun", "generate", "-m", model, "-p", g.Text, "-n", "1", "--temp", "0", "--ignore-eos")
	want := mustRun(t, "mmrun", "detokenize", "-m", model, "--ids", strconv.Itoa(g.Greedy[len(g.Greedy)-1]))
	if out != want {
		t.Errorf("greedy token after the fixture's text: got %q, reference %q", out, want)
	}
	a := mustRun(t, "mmrun", "generate", "-m", model, "-p", "The", "-n", "40", "--seed", "42", "--ignore-eos")
	b := mustRun(t, "mmrun", "generate", "-m", model, "-p", "The", "-n", "40", "--seed", "42", "--ignore-eos")
	if a != b || a == "" {
		t.Errorf("the same seed gave %q and %q", a, b)
	}
	// A conversation saved and continued in another process equals the
	// interactive session that never stopped.
	dir := t.TempDir()
	st := filepath.Join(dir, "state")
	one := mustRun(t, "mmrun", "generate", "-m", model, "-p", "The state\n", "-n", "5", "--temp", "0", "--ignore-eos", "--state-out", st)
	two := mustRun(t, "mmrun", "generate", "-m", model, "-p", "the pool\n", "-n", "5", "--temp", "0", "--ignore-eos", "--state-in", st)
	inter, _, code := cmd(t, "The state\nthe pool\n", "mmrun", "generate", "-m", model, "-i", "-n", "5", "--temp", "0", "--ignore-eos")
	if code != 0 || inter != one+two {
		t.Errorf("saved and continued: %q + %q; interactive: %q", one, two, inter)
	}
}

// TestScore compares `mmrun score` with the reference's logits.
func TestScore(t *testing.T) {
	g, err := fixtures.Load("memmamba-fifo")
	if err != nil {
		t.Fatal(err)
	}
	model := convertFixture(t, "memmamba-fifo", "f32")
	text := filepath.Join(t.TempDir(), "text.txt")
	os.WriteFile(text, []byte(g.Text), 0o644)
	out := mustRun(t, "mmrun", "score", "-m", model, text, "--json")
	var res scoreResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	var nll float64
	for i := 0; i+1 < len(g.Tokens); i++ {
		nll -= sample.LogProb(g.Logits[i], g.Tokens[i+1])
	}
	want := nll / float64(len(g.Tokens)-1)
	if res.Tokens != len(g.Tokens)-1 || math.Abs(res.NLL-want) > 1e-3 {
		t.Errorf("score: %d tokens, nll %v; reference %d tokens, nll %v", res.Tokens, res.NLL, len(g.Tokens)-1, want)
	}
	if math.Abs(res.BitsPerByte-res.NLL/math.Ln2) > 1e-9 {
		t.Errorf("byte-level bits per byte %v != nll/ln2 %v", res.BitsPerByte, res.NLL/math.Ln2)
	}
	// --ref: against itself nothing changes; against int8 a little.
	out = mustRun(t, "mmrun", "score", "-m", model, "--ref", model, text, "--json")
	var self scoreResult
	if err := json.Unmarshal([]byte(out), &self); err != nil || self.Compare == nil {
		t.Fatalf("score --ref: %v %s", err, out)
	}
	if c := self.Compare; math.Abs(c.MeanKL) > 1e-9 || c.Top1 != 1 || c.BPBChange != 0 || c.RefNLL != self.NLL {
		t.Errorf("a model against itself: %+v", *c)
	}
	q := convertFixture(t, "memmamba-fifo", "int8")
	out = mustRun(t, "mmrun", "score", "-m", q, "--ref", model, text, "--json")
	var qr scoreResult
	if err := json.Unmarshal([]byte(out), &qr); err != nil || qr.Compare == nil {
		t.Fatalf("score --ref: %v %s", err, out)
	}
	if c := qr.Compare; c.MeanKL <= 0 || c.MeanKL > 1e-2 || math.Abs(c.RefNLL-res.NLL) > 1e-9 {
		t.Errorf("int8 against f32: %+v (f32 alone: nll %v)", *c, res.NLL)
	}
}

func TestTokenizeRoundTrip(t *testing.T) {
	model := convertFixture(t, "mamba-bias-untied", "f32")
	text := "the quick brown fox 0123"
	ids := strings.TrimSpace(mustRun(t, "mmrun", "tokenize", "-m", model, "--text", text))
	if back := mustRun(t, "mmrun", "detokenize", "-m", model, "--ids", ids); back != text {
		t.Errorf("tokenize then detokenize: %q", back)
	}
	tokJSON := filepath.Join(fixtures.Dir(), "mamba-bias-untied", "tokenizer.json")
	if ids2 := strings.TrimSpace(mustRun(t, "mmrun", "tokenize", "--tokenizer", tokJSON, "--text", text)); ids2 != ids {
		t.Errorf("the model's tokenizer gives %s, tokenizer.json %s", ids, ids2)
	}
}

// TestExitCodes checks the commands' contract: 0 ok, 1 bad input with one
// sentence naming the file, 2 bad usage.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	model := convertFixture(t, "mamba-tiny", "int8")
	broken := filepath.Join(dir, "broken.mmq")
	b, _ := os.ReadFile(model)
	b[len(b)-100] ^= 0xff
	os.WriteFile(broken, b, 0o644)
	garbage := filepath.Join(dir, "garbage.mmq")
	os.WriteFile(garbage, []byte("not a model at all"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"mmrun", nil, 2, "no command"},
		{"mmrun", []string{"fly"}, 2, "unknown command"},
		{"mmrun", []string{"generate", "-m", model}, 2, "-p PROMPT is required"},
		{"mmrun", []string{"generate", "-m", model, "-p", "x", "--temp", "-1"}, 2, "temperature"},
		{"mmrun", []string{"generate", "-m", filepath.Join(dir, "nope.mmq"), "-p", "x"}, 1, "nope.mmq"},
		{"mmrun", []string{"generate", "-m", garbage, "-p", "x"}, 1, "garbage.mmq"},
		{"mmrun", []string{"logits", "-m", model, "--ids", "1 99999", "--out", filepath.Join(dir, "x.npy")}, 1, "outside the vocabulary"},
		{"mmconvert", []string{"verify", broken}, 1, "broken.mmq"},
		{"mmconvert", []string{"verify", model}, 0, "OK"},
		{"mmconvert", []string{filepath.Join(fixtures.Dir(), "mamba-tiny")}, 2, "-o OUTPUT is required"},
		{"mmconvert", []string{filepath.Join(fixtures.Dir(), "mamba-tiny"), "-o", model}, 1, "exists"},
		{"mmconvert", []string{filepath.Join(fixtures.Dir(), "mamba-tiny"), "-o", filepath.Join(dir, "x"), "--type", "int3"}, 2, "int3"},
		{"mmconvert", []string{"inspect", garbage}, 1, "garbage.mmq"},
	} {
		out, errOut, code := cmd(t, "", tc.name, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%s %v: exit %d, %q; want exit %d mentioning %q", tc.name, tc.args, code, out+errOut, tc.code, tc.want)
		}
		if code == 1 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s %v: error is not one line: %q", tc.name, tc.args, errOut)
		}
	}
	out := mustRun(t, "mmconvert", "inspect", "--json", model)
	var doc struct {
		Config struct {
			ModelType string `json:"model_type"`
		} `json:"config"`
		Tensors []struct{ Type string } `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Config.ModelType != "mamba" || len(doc.Tensors) == 0 {
		t.Errorf("inspect --json: %v %+v", err, doc)
	}
}

// TestBackendsAgree: `mmrun generate --backend ort` and `--backend native`
// produce the same greedy text on the fixtures.
func TestBackendsAgree(t *testing.T) {
	if _, err := ort.FindLibrary("", ""); err != nil || !ort.Available {
		t.Skipf("ONNX Runtime backend not tested: %v", err)
	}
	for _, name := range []string{"mamba-bias-untied", "memmamba-priority", "memmamba-fifo"} {
		g, err := fixtures.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"f32", "int8"} {
			model := convertFixture(t, name, typ)
			args := []string{"generate", "-m", model, "-p", g.Text[:20], "-n", "32", "--temp", "0", "--ignore-eos"}
			native := mustRun(t, "mmrun", append(args, "--backend", "native")...)
			onnx := mustRun(t, "mmrun", append(args, "--backend", "ort")...)
			if native != onnx {
				t.Errorf("%s %s: native %q, ort %q", name, typ, native, onnx)
			}
		}
	}
}
