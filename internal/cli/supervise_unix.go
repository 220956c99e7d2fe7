//go:build unix

package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// childEnv marks the supervised child process.
const childEnv = "MEMMAMBA_CLI_CHILD"

// noSuperviseEnv, when set, runs the command in one process (for
// debuggers and profilers).
const noSuperviseEnv = "MMNOSUPERVISE"

// supervise makes every crash exit ExitBadInput. A Go runtime crash that
// recover cannot catch (a panic on another goroutine, a fatal error such as
// running out of memory or a stack overflow) exits 2, which the commands
// document as bad usage; so the command runs as a child of itself, with its
// crash report (debug.SetCrashOutput) on a pipe, and this process turns a
// crash into one line and exit 1, and passes every other exit code on.
//
// supervise returns in the child (and where the child cannot be started,
// so the command runs in this process); in the parent it exits. The child
// inherits stdin, stdout and stderr; SIGINT, SIGTERM, SIGHUP and SIGQUIT
// sent to the parent are passed to it, and on Linux it gets SIGTERM if the
// parent dies.
func supervise(cmd string) {
	if os.Getenv(childEnv) == "1" {
		os.Unsetenv(childEnv) // not for the child's own children
		if f := os.NewFile(3, "crash-report"); f != nil {
			debug.SetCrashOutput(f, debug.CrashOptions{}) // it keeps its own copy
			f.Close()
		}
		return
	}
	if os.Getenv(noSuperviseEnv) != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	c := exec.Command(exe, os.Args[1:]...)
	c.Args[0] = os.Args[0]
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.ExtraFiles = []*os.File{w}
	c.Env = append(os.Environ(), childEnv+"=1")
	c.SysProcAttr = childAttr()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	// Pdeathsig follows the thread that started the child.
	runtime.LockOSThread()
	err = c.Start()
	w.Close()
	if err != nil {
		signal.Reset()
		runtime.UnlockOSThread()
		r.Close()
		return
	}
	go func() {
		for s := range sigs {
			c.Process.Signal(s)
		}
	}()
	report := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
		report <- b
	}()
	c.Wait()
	crash := <-report
	os.Exit(childExit(cmd, c.ProcessState, crash))
}

// childExit prints what the parent adds to the child's end and returns the
// exit code: ExitBadInput after a crash report, 128 plus the signal's
// number after a signal, else the child's own code.
func childExit(cmd string, st *os.ProcessState, crash []byte) int {
	if len(bytes.TrimSpace(crash)) > 0 {
		line := crashLine(crash)
		fmt.Fprintf(os.Stderr, "%s: internal error: %s; please report it with the command line and the report above\n", cmd, line)
		return ExitBadInput
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if ws.Signal() == syscall.SIGKILL {
			fmt.Fprintf(os.Stderr, "%s: killed by SIGKILL (out of memory?)\n", cmd)
		}
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// crashLine picks the line of a Go crash report that says what happened
// ("panic: ..." or "fatal error: ..."; a fatal error's own line reaches
// stderr only, before the report starts), else says it was a fatal error.
func crashLine(report []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(report), []byte("\n"))
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte("panic: ")) || bytes.HasPrefix(l, []byte("fatal error: ")) {
			return bytes.TrimSpace(l)
		}
	}
	return []byte("a fatal error of the Go runtime")
}
