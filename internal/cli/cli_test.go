package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memmamba/memmamba/internal/safeio"
)

// TestMain lets the tests run this binary as a command whose run function
// panics or fails, to see its exit code.
func TestMain(m *testing.M) {
	switch os.Getenv("CLI_TEST_MODE") {
	case "panic":
		Main("cmd", func([]string) error { panic("index out of range [3] with length 2") })
	case "usage":
		Main("cmd", func([]string) error { return Usagef("bad flag") })
	case "input":
		Main("cmd", func([]string) error { return errors.New("model.mmq: not a model file") })
	case "goroutine":
		Main("cmd", func([]string) error {
			go func() { panic("on a worker goroutine") }()
			select {}
		})
	case "fatal":
		Main("cmd", func([]string) error {
			debug.SetMaxStack(1 << 20)
			return recurse(0)
		})
	case "hold":
		Main("cmd", func([]string) error {
			if _, err := safeio.Create(os.Getenv("CLI_TEST_OUT"), true); err != nil {
				return err
			}
			select {}
		})
	case "exit":
		Main("cmd", func([]string) error { os.Exit(7); return nil })
	}
	os.Exit(m.Run())
}

// TestExitCodes: a panic exits 1 with one sentence (never the usage code
// 2, which is Go's code for an unrecovered panic), and so does a crash
// recover cannot catch (a panic on another goroutine, a fatal error: the
// supervising parent sees the child's crash report); a usage error exits
// 2, bad input 1, and any other code passes through.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		mode string
		code int
		want string
	}{
		{"panic", ExitBadInput, "cmd: internal error: index out of range [3] with length 2; please report it"},
		{"usage", ExitUsage, "cmd: bad flag"},
		{"input", ExitBadInput, "cmd: model.mmq: not a model file"},
		{"goroutine", ExitBadInput, "panic: on a worker goroutine"},
		{"fatal", ExitBadInput, "runtime: goroutine stack exceeds"},
		{"exit", 7, ""},
	} {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "CLI_TEST_MODE="+tc.mode)
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if len(out) > 2000 {
			out = append(out[:1000:1000], out[len(out)-1000:]...)
		}
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("%s: %v, %q; want exit %d, %q", tc.mode, err, out, tc.code, tc.want)
		}
		// A crash that recover cannot catch: the Go report, then one line.
		want := map[string]string{"goroutine": "\ncmd: internal error: panic: on a worker goroutine; please report it", "fatal": "\ncmd: internal error: a fatal error of the Go runtime; please report it"}[tc.mode]
		if want != "" && !strings.Contains(string(out), want) {
			t.Errorf("%s: %v, %q; want exit %d, %q", tc.mode, err, out, tc.code, tc.want)
		}
		if tc.mode == "panic" && strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("panic: not one line: %q", out)
		}
	}
}

// recurse overflows the stack (a fatal error, which recover cannot catch).
func recurse(n int) error {
	var pad [64]byte
	pad[n%64] = byte(n)
	if err := recurse(n + 1); err != nil {
		return err
	}
	return errors.New(string(pad[:1]))
}

// TestSignalThroughParent: SIGTERM sent to the supervising parent reaches
// the child, which removes its temporary files and exits 143.
func TestSignalThroughParent(t *testing.T) {
	dir := t.TempDir()
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "CLI_TEST_MODE=hold", "CLI_TEST_OUT="+filepath.Join(dir, "out.bin"))
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var tmps []string
	for deadline := time.Now().Add(10 * time.Second); len(tmps) == 0 && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		tmps, _ = filepath.Glob(filepath.Join(dir, ".out.bin.*.tmp"))
	}
	if len(tmps) == 0 {
		c.Process.Kill()
		t.Fatal("no temporary file")
	}
	c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitSIGTERM {
		t.Errorf("exit: %v, want %d", err, ExitSIGTERM)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
}

func TestRecover(t *testing.T) {
	err := Recover(func([]string) error { var m map[string]int; m["x"] = 1; return nil }, nil)
	var ie *InternalError
	if !errors.As(err, &ie) || len(ie.Stack) == 0 {
		t.Errorf("Recover: %v", err)
	}
	if err := Recover(func([]string) error { return nil }, nil); err != nil {
		t.Errorf("Recover of a clean run: %v", err)
	}
}
