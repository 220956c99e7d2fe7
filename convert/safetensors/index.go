package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/internal/safeio"
)

// Limits on a sharded checkpoint's index.
const (
	// MaxIndexBytes bounds model.safetensors.index.json.
	MaxIndexBytes = 64 << 20
	// MaxShards bounds the number of shard files an index may name.
	MaxShards = 10000
)

// Sharded is a checkpoint split over several .safetensors files by a
// model.safetensors.index.json, presented as one source.Reader. Every
// tensor is in exactly one shard, the one the index maps it to.
type Sharded struct {
	path    string
	shards  []*File // sorted by file name
	owner   map[string]*File
	tensors []source.Tensor
	meta    map[string]any
}

var _ source.Reader = (*Sharded)(nil)

// OpenIndex reads a model.safetensors.index.json ({"metadata": {...},
// "weight_map": {tensor: shard file}}), opens every shard it names (paths
// relative to the index's directory, which they may not leave) and checks
// that each shard holds exactly the tensors mapped to it. Tensors lists the
// shards in file-name order, each shard's tensors in data order.
func OpenIndex(indexPath string) (*Sharded, error) {
	fail := func(format string, a ...any) (*Sharded, error) {
		return nil, fmt.Errorf("%s: %s", indexPath, fmt.Sprintf(format, a...))
	}
	f, err := safeio.Open(indexPath)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxIndexBytes+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexPath, err)
	}
	if len(data) > MaxIndexBytes {
		return fail("index exceeds the %d-byte limit", MaxIndexBytes)
	}
	return openIndex(indexPath, data)
}

// openIndex is OpenIndex on the index's bytes, data, read from indexPath
// (whose folder holds the shards). FuzzIndex calls it directly.
func openIndex(indexPath string, data []byte) (*Sharded, error) {
	fail := func(format string, a ...any) (*Sharded, error) {
		return nil, fmt.Errorf("%s: %s", indexPath, fmt.Sprintf(format, a...))
	}
	var idx struct {
		Metadata  map[string]any  `json:"metadata"`
		WeightMap json.RawMessage `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return fail("not a safetensors index: %v", err)
	}
	if idx.WeightMap == nil {
		return fail("no weight_map")
	}
	wm, order, err := parseWeightMap(idx.WeightMap)
	if err != nil {
		return fail("weight_map: %v", err)
	}
	if len(wm) == 0 {
		return fail("weight_map is empty")
	}

	// Group the tensors by shard.
	want := map[string]map[string]bool{}
	for _, name := range order {
		file := wm[name]
		if !filepath.IsLocal(file) {
			return fail("tensor %q: shard file %q is not a plain relative path inside the index's directory", name, file)
		}
		if want[file] == nil {
			if len(want) == MaxShards {
				return fail("names more than %d shard files", MaxShards)
			}
			want[file] = map[string]bool{}
		}
		want[file][name] = true
	}
	files := make([]string, 0, len(want))
	for file := range want {
		files = append(files, file)
	}
	sort.Strings(files)

	s := &Sharded{path: indexPath, owner: make(map[string]*File, len(wm))}
	dir := filepath.Dir(indexPath)
	// A shard may resolve inside the index's folder, or inside the folder
	// the index itself resolves to: Hugging Face's cache links the index
	// and every shard of snapshots/REV/ to files of ../../blobs/.
	realDir := dir
	if real, err := filepath.EvalSymlinks(indexPath); err == nil {
		realDir = filepath.Dir(real)
	}
	for _, file := range files {
		// The name is local; a symlink may still lead out of the folder.
		shard := filepath.Join(dir, file)
		if err := safeio.Inside(dir, shard); err != nil {
			if safeio.Inside(realDir, shard) != nil {
				s.Close()
				return nil, fmt.Errorf("%s: shard %s: %w", indexPath, file, err)
			}
		}
		sh, err := Open(filepath.Join(dir, file))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: shard %s: %w", indexPath, file, err)
		}
		s.shards = append(s.shards, sh)
		for _, t := range sh.Tensors() {
			if !want[file][t.Name] {
				s.Close()
				if other, ok := wm[t.Name]; ok {
					return fail("shard %s holds tensor %q, which the index maps to shard %s", file, t.Name, other)
				}
				return fail("shard %s holds tensor %q, which the index does not list", file, t.Name)
			}
			s.owner[t.Name] = sh
			s.tensors = append(s.tensors, t)
		}
		for name := range want[file] {
			if !sh.Has(name) {
				s.Close()
				return fail("tensor %q: the index maps it to shard %s, which does not hold it", name, file)
			}
		}
	}

	// Metadata: the shards' __metadata__ (the first shard in name order
	// wins a clash), then the index's own metadata (e.g. total_size) on top.
	for i := len(s.shards) - 1; i >= 0; i-- {
		for k, v := range s.shards[i].meta {
			if s.meta == nil {
				s.meta = map[string]any{}
			}
			s.meta[k] = v
		}
	}
	for k, v := range idx.Metadata {
		if s.meta == nil {
			s.meta = map[string]any{}
		}
		s.meta[k] = v
	}
	return s, nil
}

// parseWeightMap decodes a JSON object of strings, refusing duplicate keys
// (which encoding/json would silently collapse). It returns the map and the
// keys in file order.
func parseWeightMap(raw json.RawMessage) (map[string]string, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	m := map[string]string{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("key %v is not a string", tok)
		}
		var file string
		if err := dec.Decode(&file); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: shard is not a string: %v", name, err)
		}
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("tensor %q is listed twice", name)
		}
		m[name] = file
		order = append(order, name)
	}
	return m, order, nil
}

// Path returns the index file's path.
func (s *Sharded) Path() string { return s.path }

// Tensors lists every tensor of every shard (shards in file-name order).
// The caller must not modify the result.
func (s *Sharded) Tensors() []source.Tensor { return s.tensors }

// Shards returns the open shard files in file-name order.
func (s *Sharded) Shards() []*File { return s.shards }

// Metadata returns the merged metadata of the shards and the index, or nil.
func (s *Sharded) Metadata() map[string]any { return s.meta }

// ReadFloat32 reads the named tensor from its shard; see File.ReadFloat32.
func (s *Sharded) ReadFloat32(name string) ([]float32, error) {
	sh := s.owner[name]
	if sh == nil {
		return nil, fmt.Errorf("%s: no tensor %q", s.path, name)
	}
	v, err := sh.ReadFloat32(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return v, nil
}

// ReadRaw reads the named tensor's bytes from its shard.
func (s *Sharded) ReadRaw(name string) ([]byte, error) {
	sh := s.owner[name]
	if sh == nil {
		return nil, fmt.Errorf("%s: no tensor %q", s.path, name)
	}
	v, err := sh.ReadRaw(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return v, nil
}

// Close closes every shard, returning the first error.
func (s *Sharded) Close() error {
	var first error
	for _, sh := range s.shards {
		if err := sh.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.shards = nil
	return first
}
