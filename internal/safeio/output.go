package safeio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrOutputIsInput is wrapped by NotInput's error: the commands report it
// as a usage error (exit 2).
var ErrOutputIsInput = errors.New("an output may not be an input")

// ErrOutputExists is wrapped by the errors for an output file that exists
// when replacing it was not asked for (CheckOutput, Publish, WriteFile). It
// matches fs.ErrExist too and reads as it does ("file already exists"); a
// command adds the flag that replaces (mmconvert: --force).
var ErrOutputExists error = outputExists{}

type outputExists struct{}

func (outputExists) Error() string { return fs.ErrExist.Error() }

// Is makes errors.Is(err, fs.ErrExist) hold for an ErrOutputExists.
func (outputExists) Is(target error) bool { return target == fs.ErrExist }

// NotInput returns an error when out names the same file as one of inputs
// (os.SameFile: the same path, a symlink to it, or a hard link), so that an
// output can never replace the model, a checkpoint file or a state it was
// computed from. Inputs that are empty or do not exist are skipped, and so
// is an out that does not exist yet.
func NotInput(out string, inputs ...string) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet: nothing to replace
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		ist, err := os.Stat(in)
		if err != nil {
			continue
		}
		if os.SameFile(ost, ist) {
			if filepath.Clean(out) == filepath.Clean(in) {
				return fmt.Errorf("%s: %w (writing it would replace it)", out, ErrOutputIsInput)
			}
			return fmt.Errorf("%s: %w (it is the input %s; writing it would replace it)", out, ErrOutputIsInput, in)
		}
	}
	return nil
}

// CheckOutput checks, before any long work starts, that a file can be
// written at path: its folder exists and is writable (a probe file is
// created in it and removed), and path itself is not a folder or another
// non-regular file (renaming over /dev/null or a FIFO would replace it).
// Unless force, an existing file at path is an error too (ErrOutputExists).
func CheckOutput(path string, force bool) error {
	if path == "" {
		return errors.New("empty output path")
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&fs.ModeSymlink != 0 {
			// Renaming replaces the link, not its target; follow it only
			// to name what is there.
			if tst, err := os.Stat(path); err == nil && !tst.Mode().IsRegular() {
				return fmt.Errorf("%s: exists and is %s, not a regular file", path, kind(tst.Mode()))
			}
		} else if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: exists and is %s, not a regular file", path, kind(st.Mode()))
		}
		if !force {
			return fmt.Errorf("%s: %w", path, ErrOutputExists)
		}
	}
	// Any other Lstat error (missing, or a parent that is not a folder)
	// is named by the folder's checks below.
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: the output folder %s does not exist", path, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: the output folder: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a folder", path, dir)
	}
	probe, err := os.CreateTemp(dir, ".mmprobe-*.tmp")
	if err != nil {
		return fmt.Errorf("%s: the output folder %s is not writable: %w", path, dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}
