package torchzip

import (
	"archive/zip"
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/memmamba/memmamba/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// realFiles returns the committed test checkpoints.
func realFiles(t testing.TB) map[string][]byte {
	paths, _ := filepath.Glob("testdata/*.pt")
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// dataPkl extracts <archive>/data.pkl from a zip, or nil.
func dataPkl(b []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil
	}
	for _, zf := range zr.File {
		if filepath.Base(zf.Name) == "data.pkl" {
			rc, err := zf.Open()
			if err != nil {
				return nil
			}
			defer rc.Close()
			p, _ := io.ReadAll(rc)
			return p
		}
	}
	return nil
}

// TestUpdateSeeds rewrites testdata/fuzz/{FuzzPickle,FuzzTorchZip} from the
// committed checkpoints when run with -update.
func TestUpdateSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the fuzz seeds")
	}
	zips, pickles := map[string][]byte{}, map[string][]byte{}
	for name, b := range realFiles(t) {
		zips[name] = b
		if p := dataPkl(b); p != nil {
			pickles[name] = p
		}
	}
	golden.WriteSeeds(t, "FuzzTorchZip", zips)
	golden.WriteSeeds(t, "FuzzPickle", pickles)
}

// FuzzPickle runs the unpickler with a persistent loader that accepts any
// well-formed storage id, then walks the result as the reader does; every
// tensor it yields must lie inside its storage.
func FuzzPickle(f *testing.F) {
	for _, b := range realFiles(f) {
		if p := dataPkl(b); p != nil {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		load := func(pid any) (any, error) {
			tp, ok := pid.(*pyTuple)
			if !ok || len(tp.items) != 5 {
				return nil, errFuzz
			}
			g, ok := tp.items[1].(pyGlobal)
			key, ok2 := tp.items[2].(string)
			n, ok3 := tp.items[4].(int64)
			if !ok || !ok2 || !ok3 || dtypes[g.name] == "" || n < 0 || n > 1<<20 {
				return nil, errFuzz
			}
			return &storageRef{key: key, dtype: dtypes[g.name], numel: n}, nil
		}
		root, err := unpickle(data, load)
		if err != nil {
			return
		}
		file := &File{byName: map[string]*tensorVal{}}
		w := walker{f: file, seen: map[any]bool{}}
		if err := w.walk(root, "", 0); err != nil {
			return
		}
		for name, tv := range file.byName {
			if tv.numel() == 0 {
				continue
			}
			last := tv.offset
			for i, d := range tv.shape {
				last += int64(d-1) * tv.stride[i]
			}
			if last >= tv.storage.numel || last < tv.offset {
				t.Fatalf("%s: view reaches %d of %d", name, last, tv.storage.numel)
			}
		}
	})
}

// FuzzTorchZip opens arbitrary bytes as a checkpoint and reads every
// tensor it lists.
func FuzzTorchZip(f *testing.F) {
	for _, b := range realFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz.pt")
		if err != nil {
			return
		}
		for _, ti := range tf.Tensors() {
			raw, err := tf.ReadRaw(ti.Name)
			if err != nil {
				continue // e.g. a zip local header that does not match
			}
			if int64(len(raw)) != int64(ti.NumElements())*elemSize[string(ti.DType)] {
				t.Fatalf("%s: %d bytes for %v", ti.Name, len(raw), ti)
			}
			_, _ = tf.ReadFloat32(ti.Name)
		}
	})
}

type fuzzErr struct{}

func (fuzzErr) Error() string { return "bad persistent id" }

var errFuzz error = fuzzErr{}
