//go:build !unix

package cli

// supervise does nothing where pipes cannot be passed to a child: a
// panic on the main goroutine is still recovered (Recover).
func supervise(string) {}
