//go:build race

package ops

// raceEnabled: under the race detector sync.Pool drops items at random and
// synchronisation allocates, so allocation counts are not measured.
const raceEnabled = true
