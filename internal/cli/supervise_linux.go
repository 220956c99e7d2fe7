package cli

import "syscall"

// childAttr has the child terminated if the supervising parent dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
