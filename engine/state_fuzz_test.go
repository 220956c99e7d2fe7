package engine

import (
	"bytes"
	"testing"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/quant"
)

// Two tiny shapes whose states are a few hundred bytes, so that the
// fuzzer's mutations land on the blob's structure (sizes, counts,
// positions) and not mostly inside a fixture's 24 KB of floats.
func init() {
	convert.SyntheticShapes["fuzz-state-mamba"] = `{"model_type":"mamba","vocab_size":256,"hidden_size":8,` +
		`"num_hidden_layers":2,"state_size":2}`
	convert.SyntheticShapes["fuzz-state-memmamba"] = `{"model_type":"memmamba","vocab_size":256,"hidden_size":8,` +
		`"num_hidden_layers":2,"state_size":2,"memory":{"pool_size":3,"summary_dim":4,"attn_dim":4,"n_heads":1,` +
		`"score_dim":4,"cross_layer_every":2}}`
}

// FuzzLoadState feeds Load arbitrary blobs on plain Mamba and MemMamba
// models (two fixtures and two tiny synthetic shapes), seeded with their
// real blobs (empty and busy sessions). Each input is tried as it is and
// re-signed (its trailing checksum made right), so that mutations reach
// the body's checks instead of stopping at the checksum. Load must not
// panic; what it accepts must save back to the same bytes. The models are
// converted once per process (openFixture and syntheticModel cache them),
// before fuzzing starts, never per execution.
func FuzzLoadState(f *testing.F) {
	models := []*Model{
		syntheticModel(f, "fuzz-state-mamba", quant.F32),
		syntheticModel(f, "fuzz-state-memmamba", quant.F32),
	}
	for _, name := range []string{"mamba-tiny", "memmamba-priority"} {
		m, _ := openFixture(f, name, quant.F32)
		models = append(models, m)
	}
	sessions := make([]*Session, len(models))
	for i, m := range models {
		sessions[i] = m.NewSession()
		f.Add(saved(f, m.NewSession()))
		f.Add(saved(f, busySession(f, m, 20)))
		f.Add(saved(f, busySession(f, m, 150)))
	}
	f.Add([]byte("\x81\xa6layers\xdd\xff\xff\xff\xff"))
	f.Add(append([]byte(nil), stateV1Prefix...))
	f.Fuzz(func(t *testing.T, blob []byte) {
		signed := blob
		if len(blob) >= stateSumLen {
			signed = resign(bytes.Clone(blob))
		}
		for _, s := range sessions {
			for _, b := range [][]byte{blob, signed} {
				if err := s.Load(b); err != nil {
					continue
				}
				if again := saved(t, s); !bytes.Equal(again, b) {
					t.Fatalf("a loaded blob of %d bytes saves back as %d different bytes", len(b), len(again))
				}
			}
		}
	})
}

// saved is Save for tests and fuzz targets (stateBlob takes a *testing.T).
func saved(t testing.TB, s *Session) []byte {
	t.Helper()
	b, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
