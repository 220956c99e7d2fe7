// Package cli holds what the project's commands share: exit codes, the
// one-sentence error report, panic recovery, the removal of temporary files
// on a signal, and a progress bar on stderr.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/internal/safeio"
)

// Exit codes of every command. ExitUsage is only ever bad usage: an
// internal error (a recovered panic) exits ExitBadInput, and a signal exits
// 128 plus its number, after removing temporary files.
const (
	ExitOK       = 0
	ExitBadInput = 1
	ExitUsage    = 2
	ExitSIGINT   = safeio.ExitSIGINT  // 130
	ExitSIGTERM  = safeio.ExitSIGTERM // 143
)

// InternalError is a recovered panic: a bug, never the user's fault, so it
// exits ExitBadInput (not the Go runtime's 2, which reads as bad usage).
type InternalError struct {
	Value any
	Stack []byte
}

func (e *InternalError) Error() string {
	return fmt.Sprintf("internal error: %v; please report it with the command line (MMDEBUG=1 prints the stack)", e.Value)
}

// Main runs a command's run function on os.Args[1:] and exits: it runs the
// command as a child of itself (supervise), so that even a crash recover
// cannot catch exits ExitBadInput, never ExitUsage; it removes
// temporary outputs on SIGINT and SIGTERM (safeio.RemoveTempsOnSignal),
// turns a panic in run's goroutine into an InternalError (the deferred
// cleanups of run, which aborts its outputs, have run by then), and
// reports the result with Exit.
func Main(cmd string, run func(args []string) error) {
	supervise(cmd)
	safeio.RemoveTempsOnSignal(cmd)
	Exit(cmd, Recover(run, os.Args[1:]))
}

// Recover calls run(args), returning a panic as an *InternalError.
func Recover(run func(args []string) error, args []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &InternalError{Value: r, Stack: debug.Stack()}
		}
	}()
	return run(args)
}

// UsageError marks an error in how the command was called (exit 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// Exit prints err (if any) as one line prefixed with the command's name and
// exits with the matching code.
func Exit(cmd string, err error) {
	if err == nil {
		os.Exit(ExitOK)
	}
	msg := strings.TrimSpace(err.Error())
	msg = strings.ReplaceAll(msg, "\n", "; ")
	fmt.Fprintf(os.Stderr, "%s: %s\n", cmd, msg)
	var ie *InternalError
	if errors.As(err, &ie) {
		if os.Getenv("MMDEBUG") != "" {
			os.Stderr.Write(ie.Stack)
		}
		safeio.RemoveTemps()
		os.Exit(ExitBadInput)
	}
	var ue *UsageError
	if errors.As(err, &ue) || errors.Is(err, pflag.ErrHelp) || errors.Is(err, safeio.ErrOutputIsInput) {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(ExitOK)
		}
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd)
		os.Exit(ExitUsage)
	}
	os.Exit(ExitBadInput)
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Progress draws a progress bar on a terminal once an operation has run for
// a second; it draws nothing when w is not a terminal or quiet is set.
type Progress struct {
	w       io.Writer
	label   string
	start   time.Time
	last    time.Time
	enabled bool
	drawn   bool
}

// NewProgress returns a bar labelled label on stderr.
func NewProgress(label string, quiet bool) *Progress {
	return &Progress{w: os.Stderr, label: label, start: time.Now(), enabled: !quiet && IsTerminal(os.Stderr)}
}

// Update shows done of total (units are the caller's: bytes, tokens).
func (p *Progress) Update(done, total int64) {
	if !p.enabled || total <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.start) < time.Second || (now.Sub(p.last) < 100*time.Millisecond && done < total) {
		return
	}
	p.last = now
	const width = 30
	frac := float64(done) / float64(total)
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac)
	p.drawn = true
}

// Done clears the bar's line.
func (p *Progress) Done() {
	if p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", len(p.label)+40))
	}
}
