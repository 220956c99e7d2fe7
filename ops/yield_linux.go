package ops

import "syscall"

// osYield lets another thread that is ready to run on this core go first
// (sched_yield); it returns at once when there is none. The pool's spins
// call it so that, on cores shared with other processes, polling for work
// does not take the time the thread being waited for needs.
func osYield() {
	syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}
