//go:build race

package engine

// raceEnabled: the race detector allocates on synchronisation, so
// allocation counts are not measured under it.
const raceEnabled = true
