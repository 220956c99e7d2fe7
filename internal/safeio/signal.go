package safeio

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes after a signal: 128 plus the signal's number, as a shell
// reports a process killed by it.
const (
	ExitSIGINT  = 130
	ExitSIGTERM = 143
)

// RemoveTempsOnSignal makes SIGINT and SIGTERM remove every registered
// temporary file (RemoveTemps), print one line naming the signal to stderr
// (prefixed with cmd), and exit with ExitSIGINT or ExitSIGTERM. Call it once,
// at the start of main.
func RemoveTempsOnSignal(cmd string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		n := RemoveTemps()
		code, what := ExitSIGTERM, "SIGTERM"
		if sig == os.Interrupt {
			code, what = ExitSIGINT, "SIGINT"
		}
		msg := fmt.Sprintf("%s: interrupted by %s", cmd, what)
		if n > 0 {
			msg += fmt.Sprintf("; removed %d temporary file(s)", n)
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(code)
	}()
}
