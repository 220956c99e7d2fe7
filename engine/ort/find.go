// Package ort runs ONNX graphs in ONNX Runtime through
// github.com/yalue/onnxruntime_go: it finds the shared library, initialises
// the environment once, creates sessions from model bytes with the options
// the project uses, and runs them on float32 tensors.
//
// The ONNX Runtime half needs cgo (it dlopens libonnxruntime.so.1); built
// with CGO_ENABLED=0 the package still compiles, and every call that needs
// the library returns ErrNoCgo, so the native backend's commands build
// without a C toolchain. Library lookup (this file) needs no cgo.
package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// EnvLib is the environment variable naming the library, consulted after an
// explicit path (mmrun's --ort-lib).
const EnvLib = "MMRUN_ORT_LIB"

// LibRelPath is where `make ort` (scripts/install-ort.sh) installs the
// library, relative to the module root.
const LibRelPath = "third_party/onnxruntime/lib/libonnxruntime.so.1"

// InstallCommand is the command that installs the library.
const InstallCommand = "make ort"

// ErrNotInstalled is wrapped by FindLibrary when no library is found.
var ErrNotInstalled = errors.New("ONNX Runtime is not installed")

// FindLibrary returns the path of libonnxruntime.so.1: explicit when not
// empty, else $MMRUN_ORT_LIB when set, else LibRelPath under root (when
// root is empty, under the module root this package was built from, then
// under the current directory and the executable's directory and their
// parents). A path given explicitly or by the variable must exist; it is
// never silently replaced by another.
func FindLibrary(explicit, root string) (string, error) {
	if explicit != "" {
		return checkFile(explicit, "--ort-lib")
	}
	if env := os.Getenv(EnvLib); env != "" {
		return checkFile(env, EnvLib)
	}
	roots := []string{root}
	if root == "" {
		roots = candidateRoots()
	}
	for _, r := range roots {
		if r == "" {
			continue
		}
		p := filepath.Join(r, LibRelPath)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	where := root
	if where == "" {
		where = moduleRoot()
	}
	if where == "" {
		where = "the project folder"
	}
	return "", fmt.Errorf("%w: run `%s` in %s (or point --ort-lib or %s at a libonnxruntime.so.1 of version 1.24 or newer)",
		ErrNotInstalled, InstallCommand, where, EnvLib)
}

func checkFile(p, from string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s names %s: %v; run `%s` to install it in the project", ErrNotInstalled, from, p, errors.Unwrap(err), InstallCommand)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s names %s, which is not a file", ErrNotInstalled, from, p)
	}
	return p, nil
}

// moduleRoot is the module root this file was compiled from (three levels
// up from engine/ort/find.go), or "" when that folder is gone (a binary
// copied to another machine).
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}

// candidateRoots lists the module root, then the working directory and the
// executable's directory with their parents.
func candidateRoots() []string {
	roots := []string{moduleRoot()}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for d, i := s, 0; i < 8; i++ {
			roots = append(roots, d)
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return roots
}
