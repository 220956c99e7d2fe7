package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindLibrary(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rootLib := filepath.Join(root, LibRelPath)
	if err := os.MkdirAll(filepath.Dir(rootLib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootLib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	missing := filepath.Join(dir, "nope.so")
	tests := []struct {
		name, explicit, env, root string
		want                      string
		wantErr                   string // substring; the error also wraps ErrNotInstalled
	}{
		{name: "explicit wins", explicit: lib, env: missing, root: root, want: lib},
		{name: "explicit missing is an error, no fallback", explicit: missing, root: root, wantErr: "--ort-lib names " + missing},
		{name: "explicit directory", explicit: dir, wantErr: "not a file"},
		{name: "env", env: lib, root: root, want: lib},
		{name: "env missing is an error", env: missing, root: root, wantErr: EnvLib + " names " + missing},
		{name: "project folder", root: root, want: rootLib},
		{name: "not installed", root: empty, wantErr: "run `make ort` in " + empty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvLib, tc.env)
			got, err := FindLibrary(tc.explicit, tc.root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrNotInstalled) {
					t.Fatalf("FindLibrary = %q, %v; want an ErrNotInstalled error containing %q", got, err, tc.wantErr)
				}
				if strings.Count(strings.TrimSuffix(err.Error(), ")"), ". ") > 0 {
					t.Errorf("error is more than one sentence: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FindLibrary = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestModuleRoot(t *testing.T) {
	root := moduleRoot()
	if root == "" {
		t.Skip("source tree not found from runtime.Caller")
	}
	if _, err := os.Stat(filepath.Join(root, "engine", "ort", "find.go")); err != nil {
		t.Errorf("moduleRoot %q is not this module's root: %v", root, err)
	}
}

func TestTensorCheck(t *testing.T) {
	tests := []struct {
		t  Tensor
		ok bool
	}{
		{Tensor{Shape: []int64{2, 3}, Data: make([]float32, 6)}, true},
		{Tensor{Shape: []int64{}, Data: make([]float32, 1)}, true},
		{Tensor{Shape: []int64{0, 5}, Data: nil}, true},
		{Tensor{Shape: []int64{2, 3}, Data: make([]float32, 5)}, false},
		{Tensor{Shape: []int64{-1}, Data: nil}, false},
		{Tensor{Shape: []int64{1 << 40, 1 << 40}, Data: nil}, false},
	}
	for _, tc := range tests {
		if err := tc.t.check(); (err == nil) != tc.ok {
			t.Errorf("check(%v, %d values) = %v, want ok=%v", tc.t.Shape, len(tc.t.Data), err, tc.ok)
		}
	}
}
