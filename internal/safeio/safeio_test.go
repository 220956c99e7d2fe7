package safeio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test if f does not return within two seconds: the
// functions under test must never block on a FIFO.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		t.Fatal("blocked for 2 s")
		return nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("no FIFOs")
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "model.mmq")
	mkfifo(t, fifo)
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"fifo", fifo, "named pipe"},
		{"symlink to a fifo", link, "named pipe"},
		{"folder", dir, "folder"},
		{"device", "/dev/zero", "character device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.path); err != nil {
				t.Skip(err)
			}
			for fn, f := range map[string]func() error{
				"Open":         func() error { f, err := Open(tc.path); closeIf(f); return err },
				"ReadFile":     func() error { _, err := ReadFile(tc.path, 1<<20); return err },
				"CheckRegular": func() error { return CheckRegular(tc.path) },
			} {
				err := within(t, f)
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
					t.Errorf("%s(%s) = %v, want ErrNotRegular naming %q and the path", fn, tc.path, err, tc.want)
				}
			}
		})
	}
}

func closeIf(f *os.File) {
	if f != nil {
		f.Close()
	}
}

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit int64
		ok    bool
	}{{10, true}, {100, true}, {9, false}, {0, false}} {
		b, err := ReadFile(p, tc.limit)
		if tc.ok && (err != nil || string(b) != "0123456789") {
			t.Errorf("limit %d: %q, %v", tc.limit, b, err)
		}
		if !tc.ok && (!errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10 bytes")) {
			t.Errorf("limit %d: %v, want ErrTooLarge naming 10 bytes", tc.limit, err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestInside(t *testing.T) {
	root := t.TempDir()
	ckpt := filepath.Join(root, "ckpt")
	other := filepath.Join(root, "other")
	for _, d := range []string{ckpt, other, filepath.Join(ckpt, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(ckpt, "a.safetensors"))
	write(filepath.Join(ckpt, "sub", "b.safetensors"))
	write(filepath.Join(other, "secret"))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(other, "secret"), filepath.Join(ckpt, "out.safetensors")))
	must(os.Symlink("a.safetensors", filepath.Join(ckpt, "in.safetensors")))
	must(os.Symlink(other, filepath.Join(ckpt, "dirlink")))
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"a.safetensors", true},
		{"sub/b.safetensors", true},
		{"in.safetensors", true},
		{"out.safetensors", false},
		{"dirlink/secret", false},
		{"../other/secret", false},
	} {
		err := Inside(ckpt, filepath.Join(ckpt, tc.path))
		if (err == nil) != tc.ok {
			t.Errorf("Inside(%s) = %v, want ok %v", tc.path, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "outside the folder") {
			t.Errorf("Inside(%s) = %v", tc.path, err)
		}
	}
}

func TestNotInput(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.mmq")
	if err := os.WriteFile(model, []byte("model"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.npy")
	hard := filepath.Join(dir, "hard.npy")
	if err := os.Symlink(model, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(model, hard); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		out string
		ok  bool
	}{
		{model, false},
		{filepath.Join(dir, ".", "model.mmq"), false},
		{link, false},
		{hard, false},
		{filepath.Join(dir, "new.npy"), true},
	} {
		err := NotInput(tc.out, "", filepath.Join(dir, "missing"), model)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrOutputIsInput) {
			t.Errorf("NotInput(%s) = %v, want ok %v", tc.out, err, tc.ok)
		}
	}
}

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.mmq")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		force      bool
		want       string // "" for ok
	}{
		{"new", filepath.Join(dir, "new.mmq"), false, ""},
		{"existing", existing, false, "exists"},
		{"existing forced", existing, true, ""},
		{"folder", dir, true, "a folder"},
		{"fifo", fifo, true, "named pipe"},
		{"no folder", filepath.Join(dir, "missing", "x.mmq"), false, "output folder"},
		{"folder is a file", filepath.Join(existing, "x.mmq"), false, "not a folder"},
		{"read-only folder", filepath.Join(ro, "x.mmq"), false, "not writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "read-only folder" && os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			err := CheckOutput(tc.path, tc.force)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckOutput(%s, %v) = %v, want %q", tc.path, tc.force, err, tc.want)
			}
		})
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".mmprobe-*")); len(m) != 0 {
		t.Errorf("probe files left: %v", m)
	}
}

func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "state.bin")
	if err := WriteFile(dst, []byte("one"), true); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dst, []byte("two"), true); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dst, []byte("three"), false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("no replace over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "two" {
		t.Errorf("content %q, want two", b)
	}
	f, err := Create(filepath.Join(dir, "aborted"), true)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Abort()
	f.Abort()
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "aborted")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("aborted output exists: %v", err)
	}
}

// TestRemoveTemps runs last in this file: it stops the registry.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	a, err := Create(filepath.Join(dir, "a.mmq"), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(filepath.Join(dir, "b.mmq"), false)
	if err != nil {
		t.Fatal(err)
	}
	if n := RemoveTemps(); n != 2 {
		t.Errorf("removed %d, want 2", n)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	if err := a.Commit(); !errors.Is(err, ErrStopped) {
		t.Errorf("Commit after RemoveTemps: %v", err)
	}
	b.Abort()
	if _, err := Create(filepath.Join(dir, "c.mmq"), false); !errors.Is(err, ErrStopped) {
		t.Errorf("Create after RemoveTemps: %v", err)
	}
	registry.Lock()
	registry.stopped = false
	registry.Unlock()
}
