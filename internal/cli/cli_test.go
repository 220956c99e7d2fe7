package cli

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
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
	}
	os.Exit(m.Run())
}

// TestExitCodes: a panic exits 1 with one sentence (never the usage code
// 2, which is Go's code for an unrecovered panic), a usage error 2, bad
// input 1.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		mode string
		code int
		want string
	}{
		{"panic", ExitBadInput, "cmd: internal error: index out of range [3] with length 2; please report it"},
		{"usage", ExitUsage, "cmd: bad flag"},
		{"input", ExitBadInput, "cmd: model.mmq: not a model file"},
	} {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "CLI_TEST_MODE="+tc.mode)
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("%s: %v, %q; want exit %d, %q", tc.mode, err, out, tc.code, tc.want)
		}
		if tc.mode == "panic" && strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("panic: not one line: %q", out)
		}
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
