package runtime

import (
	"os"
	"testing"
)

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "mmrun-test-") }

// TestMain removes the directories that the converted fixtures
// (convertFixture) and the synthetic benchmark models (syntheticModel)
// share across a test binary's tests: they are made once per binary, so no
// single test's TempDir can own them, and a benchmark run leaves up to 2 GB.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{convDir, synthDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}
