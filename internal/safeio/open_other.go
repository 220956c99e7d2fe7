//go:build !unix

package safeio

import "os"

// openFlags is a plain read-only open where O_NONBLOCK does not exist.
const openFlags = os.O_RDONLY
