package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// A Backend runs a model's dense blocks for its sessions, in place of the
// native kernels; Options.Backend names it. Backends other than the
// built-in "native" live in their own packages and register themselves
// from init with RegisterBackend (as ollama's do), so that the engine
// depends on none of them: engine/ortbackend registers "ort".
type Backend interface {
	// NewDense returns the dense blocks of one pass (see DenseBlocks for
	// the calls and their order). Each pass is used by one goroutine at a
	// time; the passes of one model may run concurrently.
	NewDense() DenseBlocks
	// Close releases the backend; the model calls it from Close.
	Close()
}

// OpenBackend opens a backend for model m, loaded (and bound, weights
// checked) from the model file at path.
type OpenBackend func(m *Model, path string, opts Options) (Backend, error)

var (
	backendsMu sync.Mutex
	backends   = map[string]OpenBackend{}
)

// RegisterBackend makes a backend available as Options.Backend name. It
// panics when name is "native" or already registered (a program links a
// backend once).
func RegisterBackend(name string, open OpenBackend) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if _, dup := backends[name]; dup || name == "native" || name == "" {
		panic(fmt.Sprintf("runtime: backend %q registered twice", name))
	}
	backends[name] = open
}

// Backends lists the values Options.Backend takes in this program: "native"
// and the registered backends, sorted.
func Backends() []string {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	slices.Sort(names)
	return append([]string{"native"}, names...)
}

func lookupBackend(name string) (OpenBackend, error) {
	backendsMu.Lock()
	open, ok := backends[name]
	backendsMu.Unlock()
	switch {
	case ok:
		return open, nil
	case name == "ort":
		return nil, fmt.Errorf("backend %q is not linked into this program (import github.com/memmamba/memmamba/engine/ortbackend)", name)
	}
	return nil, fmt.Errorf("unknown backend %q (want %s)", name, strings.Join(Backends(), " or "))
}
