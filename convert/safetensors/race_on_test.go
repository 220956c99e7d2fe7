//go:build race

package safetensors

// slowdown scales the time bounds of the hostile-input tests: the race
// detector makes this code some ten times slower.
const slowdown = 10
