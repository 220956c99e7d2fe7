package mmap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMap(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	want := []byte("hello, mapped world")
	os.WriteFile(p, want, 0o644)
	data, unmap, err := Map(p, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(want) {
		t.Errorf("got %q", data)
	}
	DropPages(data) // harmless on a partial page
	if string(data) != string(want) {
		t.Errorf("after DropPages: %q", data)
	}
	if err := unmap(); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	for _, tc := range []struct {
		path string
		max  int64
		want error
	}{{empty, 10, ErrEmpty}, {dir, 10, ErrNotRegular}, {p, 4, ErrTooLarge}} {
		if _, _, err := Map(tc.path, tc.max); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.path, err, tc.want)
		}
	}
	if _, _, err := Map(filepath.Join(dir, "missing"), 10); err == nil {
		t.Error("missing file mapped")
	}
}
