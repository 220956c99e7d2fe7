//go:build !race

package torchzip

const slowdown = 1
