// Package golden writes and checks the fuzz seed corpora that tests
// generate from the code under test and commit under
// testdata/fuzz/<Target>/ (go test runs those files as part of the target),
// so that each package's -update flag has one writer.
package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSeed is the text of a Go fuzz corpus file holding the one []byte
// input b ("go test fuzz v1" and b as a quoted Go string).
func FuzzSeed(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// WriteSeeds writes each of seeds as testdata/fuzz/<target>/<name>,
// creating the folder.
func WriteSeeds(t testing.TB, target string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), FuzzSeed(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckSeeds writes seeds as WriteSeeds does when update is set; otherwise
// it reports each file that is missing or differs, with rerun, the command
// that rewrites them.
func CheckSeeds(t testing.TB, target string, seeds map[string][]byte, update bool, rerun string) {
	t.Helper()
	if update {
		WriteSeeds(t, target, seeds)
		return
	}
	for name, b := range seeds {
		path := filepath.Join("testdata", "fuzz", target, name)
		got, err := os.ReadFile(path)
		if err != nil || string(got) != string(FuzzSeed(b)) {
			t.Errorf("%s is missing or stale: run %s", path, rerun)
		}
	}
}
