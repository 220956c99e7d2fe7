//go:build unix

package safeio

import (
	"os"
	"syscall"
)

// openFlags opens without blocking: should a FIFO replace the checked file
// between Stat and open, the open returns at once (and the check of the
// opened file refuses it). For a regular file O_NONBLOCK changes nothing.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
