package engine

import (
	"os"
	"testing"

	"github.com/memmamba/memmamba/convert"
)

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "mmrun-test-") }

// TestMain registers a test shape, and removes the directories that the converted fixtures
// (convertFixture) and the synthetic benchmark models (syntheticModel)
// share across a test binary's tests: they are made once per binary, so no
// single test's TempDir can own them, and a benchmark run leaves up to 2 GB.
func TestMain(m *testing.M) {
	// A shape whose products split across the pool's threads (in_proj
	// 1024x256 in 8 parts, dt_proj with the scan in 2): TestFusedStep runs
	// it. Its biases are drawn as zeros, as Mamba initialises them; the
	// fixture mamba-bias-untied (TestPrefillEqualsSteps) has others.
	convert.SyntheticShapes["test-split"] = `{"model_type":"mamba","vocab_size":256,"hidden_size":256,` +
		`"num_hidden_layers":2,"state_size":16,"use_bias":true}`
	code := m.Run()
	for _, d := range []string{convDir, synthDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}
