// Package safeio opens the files the commands read and writes the files
// they produce, so that no input we do not control can hang a command, cost
// unbounded memory or be replaced by an output:
//
//   - Open and ReadFile open regular files only. A named pipe, a device or
//     a socket given as a model, checkpoint, shard, config, tokenizer or
//     state blob is refused by name before anything blocks on it (an open
//     of a FIFO waits for a writer forever).
//   - ReadFile bounds what it reads: a file larger than its limit is
//     refused with both sizes before a byte is allocated.
//   - Inside refuses a path that leaves a folder once its symlinks are
//     resolved (shards of a checkpoint).
//   - NotInput and CheckOutput refuse an output that is an input (os.SameFile)
//     or whose folder is missing or not writable, before long work starts.
//   - Create writes an output atomically (a temporary file in the same
//     folder, fsync, rename), and the temporary files of every writer are
//     removed when the process gets SIGINT or SIGTERM (see tmp.go).
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Limits of the small files the commands read whole.
const (
	// MaxConfigBytes bounds a checkpoint's config.json.
	MaxConfigBytes = 16 << 20
	// MaxTokenizerBytes bounds a tokenizer.json (the largest real ones,
	// o200k's, are about 27 MiB).
	MaxTokenizerBytes = 64 << 20
	// MaxStateBytes bounds a saved session state (--state-in); a
	// mamba-2.8b's state is about 25 MB.
	MaxStateBytes = 256 << 20
)

// ErrNotRegular is wrapped by the errors of Open and ReadFile for a path
// that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by ReadFile's error for a file above its limit.
var ErrTooLarge = errors.New("too large")

// kind names a file mode's type for error messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file"
}

// notRegular is the error for path, whose mode is m.
func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s: %w (it is %s)", path, ErrNotRegular, kind(m))
}

// CheckRegular returns an error unless path (its symlinks followed) is a
// regular file. It does not open the file, so it never blocks.
func CheckRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return notRegular(path, st.Mode())
	}
	return nil
}

// Open opens the regular file at path for reading. It checks the path with
// Stat before opening (so a FIFO is refused instead of blocking), opens it
// without blocking where the system allows (openFlags), and checks the
// opened file again: the one it opened is regular and is the one it
// checked, so a file swapped in between is refused too.
func Open(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, err
	}
	fst, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fst.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, fst.Mode())
	}
	if !os.SameFile(st, fst) {
		f.Close()
		return nil, fmt.Errorf("%s: the file changed while it was opened", path)
	}
	return f, nil
}

// ReadFile reads the regular file at path, refusing it (ErrTooLarge, with
// both sizes) when it holds more than limit bytes, before reading it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, above the limit of %d", path, ErrTooLarge, st.Size(), limit)
	}
	// The size can grow after Stat; read one byte past the limit to see.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: more than the limit of %d bytes", path, ErrTooLarge, limit)
	}
	return b, nil
}

// Inside returns an error unless path, with every symlink resolved, lies
// inside dir (also resolved): a shard named by a checkpoint's index, or a
// symlink beside it, may not lead out of the checkpoint's folder.
func Inside(dir, path string) error {
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	rpath, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	rdir, err = filepath.Abs(rdir)
	if err != nil {
		return err
	}
	rpath, err = filepath.Abs(rpath)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(rdir, rpath)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("%s resolves to %s, outside the folder %s", path, rpath, dir)
	}
	return nil
}
