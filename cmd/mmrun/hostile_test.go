package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memmamba/memmamba/internal/fixtures"
)

// runBounded runs a built command with a deadline, so that a command that
// blocks (on a FIFO, say) fails the test instead of hanging it.
func runBounded(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, filepath.Join(binDir, name), args...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 20 s: %s", name, args, out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// copyDir copies the regular files of src (not its folders) into a new
// folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

// setNaN sets the first value of an F32 tensor of a safetensors file to NaN.
func setNaN(t *testing.T, path, tensor string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]struct {
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(b[8+int(n)+hdr[tensor].Offsets[0]:], math.Float32bits(float32(math.NaN())))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileInputs runs the commands on the inputs of issue 19 that hung,
// replaced an input or ran out of memory: each is now refused at once with
// one sentence and the documented exit code, and no input changes.
func TestHostileInputs(t *testing.T) {
	dir := t.TempDir()
	model := convertFixture(t, "mamba-tiny", "int8")
	modelBytes, _ := os.ReadFile(model)
	fifo := mkfifo(t, filepath.Join(dir, "fifo"))
	link := filepath.Join(dir, "link.npy")
	os.Symlink(model, link)
	state := filepath.Join(dir, "state.bin")
	mustRun(t, "mmrun", "generate", "-m", model, "-p", "x", "-n", "1", "--state-out", state)

	tiny := filepath.Join(fixtures.Dir(), "mamba-tiny")
	fifoConfig := copyDir(t, tiny)
	mkfifo(t, filepath.Join(fifoConfig, "config.json"))
	fifoTok := copyDir(t, filepath.Join(fixtures.Dir(), "mamba-bias-untied"))
	mkfifo(t, filepath.Join(fifoTok, "tokenizer.json"))
	badTok := copyDir(t, filepath.Join(fixtures.Dir(), "mamba-bias-untied"))
	os.WriteFile(filepath.Join(badTok, "tokenizer.json"), []byte(`{"model": `), 0o644)
	fifoWeights := copyDir(t, tiny)
	mkfifo(t, filepath.Join(fifoWeights, "model.safetensors"))
	sharded := filepath.Join(fixtures.Dir(), "memmamba-fifo")
	fifoShard := copyDir(t, sharded)
	mkfifo(t, filepath.Join(fifoShard, "model-00002-of-00003.safetensors"))
	leavingShard := copyDir(t, sharded)
	outside := filepath.Join(t.TempDir(), "elsewhere.safetensors")
	os.Rename(filepath.Join(leavingShard, "model-00002-of-00003.safetensors"), outside)
	os.Symlink(outside, filepath.Join(leavingShard, "model-00002-of-00003.safetensors"))
	nan := copyDir(t, tiny)
	setNaN(t, filepath.Join(nan, "model.safetensors"), "backbone.norm_f.weight")
	out := func(name string) string { return filepath.Join(dir, name) }
	bigState := out("big.state")
	os.WriteFile(bigState, make([]byte, 1<<20), 0o644)

	for _, tc := range []struct {
		name string
		cmd  string
		args []string
		code int
		want []string
	}{
		{"a FIFO as the model", "mmrun", []string{"generate", "-m", fifo, "-p", "x"}, 1, []string{"fifo", "not a regular file"}},
		{"a FIFO as the model of logits", "mmrun", []string{"logits", "-m", fifo, "--ids", "1", "--out", out("a.npy")}, 1, []string{"not a regular file"}},
		{"a FIFO as --state-in", "mmrun", []string{"generate", "-m", model, "-p", "x", "--state-in", fifo}, 1, []string{"fifo", "named pipe"}},
		{"a --state-in larger than any state of the model", "mmrun", []string{"generate", "-m", model, "-p", "x", "--state-in", bigState}, 1, []string{"big.state", "1048576 bytes, above the limit"}},
		{"a FIFO as --tokenizer", "mmrun", []string{"tokenize", "--tokenizer", fifo, "--text", "x"}, 1, []string{"named pipe"}},
		{"/dev/zero as --tokenizer", "mmrun", []string{"tokenize", "--tokenizer", "/dev/zero", "--text", "x"}, 1, []string{"/dev/zero", "character device"}},
		{"a FIFO as inspect's file", "mmconvert", []string{"inspect", fifo}, 1, []string{"not a regular file"}},
		{"a FIFO as verify's file", "mmconvert", []string{"verify", fifo}, 1, []string{"not a regular file"}},
		{"a FIFO as the weights", "mmconvert", []string{fifoWeights, "-o", out("w.mmq")}, 1, []string{"model.safetensors", "named pipe"}},
		{"a FIFO as the weights file", "mmconvert", []string{filepath.Join(fifoWeights, "model.safetensors"), "-o", out("w.mmq")}, 1, []string{"named pipe"}},
		{"a FIFO as config.json", "mmconvert", []string{fifoConfig, "-o", out("c.mmq")}, 1, []string{"config.json", "named pipe"}},
		{"a FIFO as tokenizer.json", "mmconvert", []string{fifoTok, "-o", out("t.mmq")}, 1, []string{"tokenizer.json", "named pipe"}},
		{"a FIFO as a shard", "mmconvert", []string{fifoShard, "-o", out("s.mmq")}, 1, []string{"model-00002-of-00003.safetensors", "named pipe"}},
		{"a shard symlink leaving the folder", "mmconvert", []string{leavingShard, "-o", out("l.mmq")}, 1, []string{"model-00002-of-00003.safetensors", "outside the folder"}},
		{"a tokenizer.json that is not JSON", "mmconvert", []string{badTok, "-o", out("b.mmq")}, 1, []string{"tokenizer.json", "mmrun would refuse"}},
		{"a NaN in norm_f", "mmconvert", []string{nan, "-o", out("n.mmq")}, 1, []string{"norm_f.weight", "NaN", "index [0]", "--allow-nonfinite"}},
		{"logits --out the model", "mmrun", []string{"logits", "-m", model, "--ids", "1", "--out", model}, 2, []string{"an output may not be an input"}},
		{"logits --trace a link to the model", "mmrun", []string{"logits", "-m", model, "--ids", "1", "--out", out("a.npy"), "--trace", link}, 2, []string{"link.npy", "it is the input"}},
		{"logits --out and --trace the same", "mmrun", []string{"logits", "-m", model, "--ids", "1", "--out", out("a.npy"), "--trace", out("a.npy")}, 2, []string{"same file"}},
		{"logits --out in a missing folder", "mmrun", []string{"logits", "-m", model, "--ids", "1", "--out", out("missing/a.npy")}, 1, []string{"does not exist"}},
		{"generate --state-out the model", "mmrun", []string{"generate", "-m", model, "-p", "x", "--state-out", model}, 2, []string{"an output may not be an input"}},
		{"generate --state-out its --state-in", "mmrun", []string{"generate", "-m", model, "-p", "x", "--state-in", state, "--state-out", state}, 2, []string{"an output may not be an input"}},
		{"mmconvert -o its input", "mmconvert", []string{model, "-o", model, "--force"}, 2, []string{"an output may not be an input"}},
		{"mmconvert -o the checkpoint's config.json", "mmconvert", []string{copyDir(t, tiny), "-o", "CONFIG", "--force"}, 2, []string{"config.json", "an output may not be an input"}},
		{"bench --prefill 1e9", "mmrun", []string{"bench", "-m", model, "--prefill", "1000000000"}, 2, []string{"--prefill must be 1 to 1048576"}},
		{"bench --decode -1", "mmrun", []string{"bench", "-m", model, "--decode", "-1"}, 2, []string{"--decode 0 to"}},
		{"bench --runs 1e6", "mmrun", []string{"bench", "-m", model, "--runs", "1000000"}, 2, []string{"--runs 1 to 1000"}},
		{"generate -n 1e9", "mmrun", []string{"generate", "-m", model, "-p", "x", "-n", "1000000000"}, 2, []string{"-n must be 0 to 1048576"}},
		{"passkey --lengths overflowing", "mmrun", []string{"passkey", "-m", model, "--lengths", "9999999999999999k"}, 2, []string{"above the bound"}},
		{"passkey --lengths 2^40", "mmrun", []string{"passkey", "-m", model, "--lengths", "1099511627776"}, 2, []string{"above the bound"}},
		{"passkey --trials 1e9", "mmrun", []string{"passkey", "-m", model, "--trials", "1000000000"}, 2, []string{"--trials must be 1 to 10000"}},
		{"--threads 1e6", "mmrun", []string{"generate", "-m", model, "-p", "x", "--threads", "1000000"}, 2, []string{"--threads"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "mmconvert -o the checkpoint's config.json" {
				args = append([]string{}, args...)
				args[2] = filepath.Join(args[0], "config.json")
			}
			start := time.Now()
			text, code := runBounded(t, tc.cmd, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output %q does not mention %q", text, w)
				}
			}
			if tc.code == 1 && strings.Count(strings.TrimSpace(text), "\n") > 0 {
				t.Errorf("not one line: %q", text)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if b, _ := os.ReadFile(model); !bytes.Equal(b, modelBytes) {
		t.Error("the model file changed")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
	// With --allow-nonfinite the NaN is kept (f32 holds it).
	if text, code := runBounded(t, "mmconvert", nan, "-o", out("n.mmq"), "--allow-nonfinite", "-q"); code != 0 {
		t.Errorf("--allow-nonfinite: exit %d: %s", code, text)
	}
}

// TestSignalRemovesTemp: SIGTERM or SIGINT during a conversion removes the
// temporary file before the process exits, with 128 + the signal's number.
func TestSignalRemovesTemp(t *testing.T) {
	// The signal comes as soon as the temporary file exists, a few
	// milliseconds into a conversion that would take seconds.
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		name string
	}{{syscall.SIGTERM, 143, "SIGTERM"}, {syscall.SIGINT, 130, "SIGINT"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "m.mmq")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c := exec.CommandContext(ctx, filepath.Join(binDir, "mmconvert"), "--synthetic", "mamba-130m", "-o", out, "--type", "int8", "-q")
			var stderr bytes.Buffer
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			var tmps []string
			for deadline := time.Now().Add(30 * time.Second); len(tmps) == 0 && time.Now().Before(deadline); {
				tmps, _ = filepath.Glob(filepath.Join(dir, ".m.mmq.*.tmp"))
				time.Sleep(2 * time.Millisecond)
			}
			if len(tmps) == 0 {
				c.Process.Kill()
				c.Wait()
				t.Fatalf("no temporary file appeared: %s", stderr.String())
			}
			c.Process.Signal(tc.sig)
			err := c.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("exit: %v (the conversion finished before the signal?) %s", err, stderr.String())
			}
			if ee.ExitCode() != tc.code || !strings.Contains(stderr.String(), "interrupted by "+tc.name) {
				t.Errorf("exit %d, %q; want %d, interrupted by %s", ee.ExitCode(), stderr.String(), tc.code, tc.name)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) > 0 {
				t.Errorf("left behind: %v", m)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
				t.Errorf("left behind: %v", m)
			}
		})
	}
}

func TestCheckLogitsSize(t *testing.T) {
	for _, tc := range []struct {
		tokens, vocab int
		ok            bool
	}{{1, 50280, true}, {20000, 50280, true}, {100000, 50280, false}, {1 << 30, 256, false}} {
		err := checkLogitsSize(tc.tokens, tc.vocab)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "give fewer tokens") {
			t.Errorf("%d x %d: %v", tc.tokens, tc.vocab, err)
		}
	}
}
