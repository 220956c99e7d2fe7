package safetensors

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/memmamba/memmamba/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/tiny.safetensors and the fuzz seed corpus")

// TestUpdateSeeds rewrites the committed fixture and fuzz seeds when run
// with -update; otherwise it checks the fixture still matches the writer.
func TestUpdateSeeds(t *testing.T) {
	data, err := Encode(fixture(), map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	fixturePath := filepath.Join("testdata", "tiny.safetensors")
	if !*update {
		old, err := os.ReadFile(fixturePath)
		if err != nil {
			t.Skip("no fixture; run with -update")
		}
		if string(old) != string(data) {
			t.Errorf("%s differs from the writer's output; run with -update if the change is intended", fixturePath)
		}
		return
	}
	if err := os.WriteFile(fixturePath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{
		"tiny":  data,
		"empty": build(`{}      `, nil),
		"meta":  build(`{"__metadata__":{"format":"pt"},"x":{"dtype":"BF16","shape":[1,1],"data_offsets":[0,2]}}`, []byte{0x80, 0x3f}),
	}
	golden.WriteSeeds(t, "FuzzSafetensors", seeds)
}
