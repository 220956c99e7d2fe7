//go:build unix && !linux

package cli

import "syscall"

// childAttr is empty where there is no parent-death signal.
func childAttr() *syscall.SysProcAttr { return nil }
