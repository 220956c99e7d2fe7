//go:build race

package ops

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// the allocation counts of the functions that borrow scratch from one are
// not checked under it.
const raceEnabled = true
