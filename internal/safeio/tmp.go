package safeio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// registry holds the temporary files of every output being written, so
// that RemoveTemps (called on SIGINT and SIGTERM) can remove them. Its lock
// also orders Publish against RemoveTemps: once the temporary files are
// removed, no rename can publish a half-written one.
var registry struct {
	sync.Mutex
	files   map[string]bool
	stopped bool
}

// ErrStopped is returned by Publish and CreateTemp after RemoveTemps: the
// process is exiting on a signal.
var ErrStopped = errors.New("stopped by a signal")

// CreateTemp creates a temporary file for the output dst in dst's folder,
// named ".BASE.*.tmp" (so it is hidden, and renaming it is atomic: the same
// file system), and registers it for removal on a signal.
func CreateTemp(dst string) (*os.File, error) {
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.stopped {
		return nil, fmt.Errorf("%s: %w", dst, ErrStopped)
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dst, err)
	}
	if registry.files == nil {
		registry.files = map[string]bool{}
	}
	registry.files[f.Name()] = true
	return f, nil
}

// RemoveTemp removes a temporary file of CreateTemp (an aborted output)
// and forgets it. A file already gone is not an error.
func RemoveTemp(tmp string) error {
	registry.Lock()
	defer registry.Unlock()
	delete(registry.files, tmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Publish moves the temporary file tmp to dst and forgets it. With
// replace, an existing dst is replaced (rename, atomic); without it, an
// existing dst is an error (ErrOutputExists), checked atomically where the file system can
// link (link, then remove tmp) and by Lstat then rename where it cannot.
func Publish(tmp, dst string, replace bool) error {
	registry.Lock()
	defer registry.Unlock()
	if registry.stopped {
		return fmt.Errorf("%s: %w", dst, ErrStopped)
	}
	if !replace {
		if err := os.Link(tmp, dst); err == nil {
			os.Remove(tmp)
			delete(registry.files, tmp)
			return nil
		}
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s: %w", dst, ErrOutputExists)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	delete(registry.files, tmp)
	syncDir(filepath.Dir(dst))
	return nil
}

// RemoveTemps removes every registered temporary file and stops further
// CreateTemp and Publish calls (the process is about to exit on a signal).
// It returns how many files it removed.
func RemoveTemps() int {
	registry.Lock()
	defer registry.Unlock()
	registry.stopped = true
	n := 0
	for f := range registry.files {
		if err := os.Remove(f); err == nil {
			n++
		}
		delete(registry.files, f)
	}
	return n
}

// syncDir syncs a folder so a rename in it survives a crash. Errors are
// ignored: some systems cannot sync folders, and the file itself is
// already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// File is an output being written atomically: writes go to a temporary
// file beside the destination, and Commit syncs it and renames it into
// place, so the destination is either what was there before or the
// complete new file. Abort (safe to defer; a no-op after Commit) removes
// the temporary file.
type File struct {
	*os.File
	dst     string
	replace bool
	done    bool
}

// Create starts an atomic write of dst. With replace, Commit replaces an
// existing dst; without it, an existing dst makes Commit fail.
func Create(dst string, replace bool) (*File, error) {
	f, err := CreateTemp(dst)
	if err != nil {
		return nil, err
	}
	return &File{File: f, dst: dst, replace: replace}, nil
}

// Commit syncs and closes the temporary file, gives it mode 0644 and
// renames it to the destination.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("%s: already closed", f.dst)
	}
	f.done = true
	tmp := f.Name()
	err := f.Chmod(0o644)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = Publish(tmp, f.dst, f.replace)
	}
	if err != nil {
		RemoveTemp(tmp)
		return fmt.Errorf("%s: %w", f.dst, err)
	}
	return nil
}

// Abort closes and removes the temporary file; it does nothing after
// Commit or a previous Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	RemoveTemp(f.Name())
}

// WriteFile writes data to dst atomically (Create, Write, Commit),
// replacing an existing dst when replace is set.
func WriteFile(dst string, data []byte, replace bool) error {
	f, err := Create(dst, replace)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return f.Commit()
}
