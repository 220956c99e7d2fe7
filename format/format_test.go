package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/memmamba/memmamba/quant"
)

func TestDataSize(t *testing.T) {
	maxDim := int64(MaxDim) // a variable, so this compiles where int is 32 bits
	tests := []struct {
		typ   quant.Type
		shape []int
		want  uint64
		err   string
	}{
		{quant.F32, nil, 4, ""},
		{quant.F32, []int{3, 5}, 60, ""},
		{quant.F16, []int{2, 3, 4}, 48, ""},
		{quant.BF16, []int{7}, 14, ""},
		{quant.Q8_0, []int{2, 64}, 2 * 2 * 34, ""},
		{quant.Q4_0, []int{3, 32}, 3 * 18, ""},
		{quant.F32, []int{0, 9}, 0, ""},
		{quant.F32, []int{9, 0}, 0, ""},
		{quant.Q8_0, []int{2, 33}, 0, "blocks"},
		{quant.Q4_0, nil, 0, "blocks"},
		{quant.Type(99), []int{1}, 0, "unknown tensor type"},
		{quant.F32, []int{1, 1, 1, 1, 1}, 0, "rank 5"},
		{quant.F32, []int{-1}, 0, "outside"},
		{quant.F32, []int{int(maxDim + 1)}, 0, "outside"},
		{quant.F32, []int{int(maxDim), int(maxDim), int(maxDim)}, 0, "overflows"},
	}
	for _, tt := range tests {
		got, err := DataSize(tt.typ, tt.shape)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("DataSize(%v, %v) = %d, %v; want error with %q", tt.typ, tt.shape, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DataSize(%v, %v) = %d, %v; want %d", tt.typ, tt.shape, got, err, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, tok := range []Tokenizer{
		{Kind: TokenizerBytes},
		{Kind: TokenizerHFBPE, JSON: []byte(`{"model": {"type": "BPE"}}`)},
	} {
		t.Run(tok.Kind, func(t *testing.T) {
			h := testHeader(t)
			h.Tokenizer = tok
			h.Provenance.Synthetic = tok.Kind == TokenizerBytes
			data := testData(t, smallPlan, 3)
			path := filepath.Join(dir, tok.Kind+".mmb")
			raw := writeModel(t, path, h, smallPlan, data)

			f, err := Open(path, OpenOptions{VerifyChecksums: true})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			checkFile(t, f, h, data, true)
			if f.Size() != int64(len(raw)) {
				t.Errorf("Size = %d, want %d", f.Size(), len(raw))
			}
			if err := Verify(path); err != nil {
				t.Errorf("Verify: %v", err)
			}

			fb, err := OpenBytes("bytes", raw)
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, fb, h, data, false)
		})
	}
}

// checkFile compares an open file with what was written.
func checkFile(t *testing.T, f *File, h Header, data map[string][]byte, aligned bool) {
	t.Helper()
	if f.Major != MajorVersion || f.Minor != MinorVersion {
		t.Errorf("version %d.%d", f.Major, f.Minor)
	}
	got := f.Header
	if !reflect.DeepEqual(got.Config, h.Config) {
		t.Errorf("Config = %+v, want %+v", got.Config, h.Config)
	}
	if got.Tokenizer.Kind != h.Tokenizer.Kind || !bytes.Equal(got.Tokenizer.JSON, h.Tokenizer.JSON) {
		t.Errorf("Tokenizer = %+v, want %+v", got.Tokenizer, h.Tokenizer)
	}
	if !reflect.DeepEqual(got.Provenance, h.Provenance) {
		t.Errorf("Provenance = %+v, want %+v", got.Provenance, h.Provenance)
	}
	if !reflect.DeepEqual(got.Metadata, h.Metadata) {
		t.Errorf("Metadata = %v, want %v", got.Metadata, h.Metadata)
	}
	ts := f.Tensors()
	if len(ts) != len(smallPlan) {
		t.Fatalf("%d tensors, want %d", len(ts), len(smallPlan))
	}
	for i, s := range smallPlan {
		tt, ok := f.Tensor(s.Name)
		if !ok {
			t.Fatalf("tensor %q missing", s.Name)
		}
		if ts[i].Name != s.Name || tt.Type != s.Type || !reflect.DeepEqual(tt.Shape, s.Shape) {
			t.Errorf("tensor %d = %q %v %v, want %q %v %v", i, ts[i].Name, tt.Type, tt.Shape, s.Name, s.Type, s.Shape)
		}
		if !bytes.Equal(tt.Data, data[s.Name]) || cap(tt.Data) != len(tt.Data) {
			t.Errorf("tensor %q: data differs (len %d cap %d)", s.Name, len(tt.Data), cap(tt.Data))
		}
		if info := f.Header.Tensors[i]; info.Offset%Alignment != 0 {
			t.Errorf("tensor %q: offset %d not aligned", s.Name, info.Offset)
		}
		if aligned && len(tt.Data) > 0 && uintptr(unsafe.Pointer(&tt.Data[0]))%Alignment != 0 {
			t.Errorf("tensor %q: data at %p not %d-byte aligned in memory", s.Name, &tt.Data[0], Alignment)
		}
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor(nope) found")
	}
}

// TestGolden checks that identical input gives byte-identical files, and
// that the layout has not changed from testdata/small.mmb (run with -update
// after a deliberate format change, and bump the version).
func TestGolden(t *testing.T) {
	a := smallFile(t)
	b := smallFile(t)
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same input differ")
	}
	golden := filepath.Join("testdata", "small.mmb")
	if *update {
		if err := os.WriteFile(golden, a, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, want) {
		t.Errorf("output differs from %s (%d vs %d bytes); rerun with -update if the change is deliberate", golden, len(a), len(want))
	}
}

func TestTruncated(t *testing.T) {
	b := smallFile(t)
	for n := 0; n < len(b); n++ {
		_, err := OpenBytes("cut.mmb", b[:n])
		if err == nil {
			t.Fatalf("%d of %d bytes: opened", n, len(b))
		}
		if !strings.HasPrefix(err.Error(), "cut.mmb: ") {
			t.Fatalf("%d bytes: error does not name the file: %v", n, err)
		}
		if n >= len(Magic) && !errors.Is(err, ErrInvalid) {
			t.Fatalf("%d bytes: %v is not ErrInvalid", n, err)
		}
	}
	_, err := OpenBytes("cut.mmb", b[:len(b)-1])
	if err == nil || !strings.Contains(err.Error(), `tensor "q4.r4"`) || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("one byte short: %v; want it to name the last tensor", err)
	}
	// The same through the file system.
	path := filepath.Join(t.TempDir(), "cut.mmb")
	os.WriteFile(path, b[:len(b)/2], 0o644)
	if _, err := Open(path, OpenOptions{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open half a file: %v", err)
	}
	os.WriteFile(path, nil, 0o644)
	if _, err := Open(path, OpenOptions{}); !errors.Is(err, ErrNotModel) {
		t.Errorf("Open empty file: %v", err)
	}
	if _, err := Open(t.TempDir(), OpenOptions{}); err == nil {
		t.Error("opened a directory")
	}
}

func TestWrongMagic(t *testing.T) {
	b := smallFile(t)
	b[0] = 'X'
	_, err := OpenBytes("m.mmb", b)
	if !errors.Is(err, ErrNotModel) || !strings.Contains(err.Error(), `"XEMMAMBA"`) {
		t.Errorf("got %v", err)
	}
	_, err = OpenBytes("m.mmb", []byte("GGUF\x03\x00\x00\x00\x00\x00"))
	if !errors.Is(err, ErrNotModel) {
		t.Errorf("GGUF: got %v", err)
	}
}

func TestVersions(t *testing.T) {
	b := smallFile(t)
	newer := fixChecksum(bytes.Clone(b))
	binary.LittleEndian.PutUint16(newer[8:], MajorVersion+1)
	binary.LittleEndian.PutUint16(newer[10:], 3)
	fixChecksum(newer)
	_, err := OpenBytes("new.mmb", newer)
	want := fmt.Sprintf("the file is format version %d.3; this build reads version %d.x", MajorVersion+1, MajorVersion)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "newer") {
		t.Errorf("newer major: %v; want %q", err, want)
	}
	// The version is checked before the rest, so even a damaged newer file
	// says which version it is.
	_, err = OpenBytes("new.mmb", newer[:PreambleSize])
	if !errors.Is(err, ErrVersion) {
		t.Errorf("newer major, truncated: %v", err)
	}

	old := bytes.Clone(b)
	binary.LittleEndian.PutUint16(old[8:], 0)
	fixChecksum(old)
	if _, err := OpenBytes("old.mmb", old); !errors.Is(err, ErrVersion) {
		t.Errorf("major 0: %v", err)
	}

	minor := bytes.Clone(b)
	binary.LittleEndian.PutUint16(minor[10:], MinorVersion+7)
	binary.LittleEndian.PutUint32(minor[12:], 0xfeed) // reserved: ignored
	fixChecksum(minor)
	f, err := OpenBytes("minor.mmb", minor)
	if err != nil {
		t.Fatalf("newer minor refused: %v", err)
	}
	if f.Minor != MinorVersion+7 {
		t.Errorf("Minor = %d", f.Minor)
	}
}

// TestUnknownKeys opens a header with keys this build does not know, at
// every level, as a later minor version may write.
func TestUnknownKeys(t *testing.T) {
	h := testHeader(t)
	ts, data := planned(t, smallPlan)
	h.Tensors = ts
	enc, err := msgpack.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	m["future_key"] = map[string]any{"nested": []any{1, "two", 3.0, nil, true}}
	m["another"] = []byte("bin")
	m["tokenizer"].(map[string]any)["merges_v2"] = "x"
	m["provenance"].(map[string]any)["signature"] = []byte{1, 2, 3}
	m["config"].(map[string]any)["rope_theta"] = 10000.0
	for _, ti := range m["tensors"].([]any) {
		ti.(map[string]any)["scale"] = 0.5
	}
	blobs := map[uint64][]byte{}
	for _, ti := range ts {
		blobs[ti.Offset] = data[ti.Name]
	}
	last := ts[len(ts)-1]
	b := rawFile(t, m, int(last.Offset+last.Size), blobs)
	f, err := OpenBytes("future.mmb", b)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.VerifyChecksums(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, f, testHeader(t), data, false)
}

// TestLyingHeader opens files whose header is well-formed msgpack but lies.
func TestLyingHeader(t *testing.T) {
	small := []TensorSpec{{"a", quant.F32, []int{4, 4}}, {"b", quant.F16, []int{8}}, {"c", quant.Q8_0, []int{32}}}
	tests := []struct {
		name   string
		mutate func(h *Header)
		want   []string // substrings of the error
	}{
		{"offset past end", func(h *Header) { h.Tensors[2].Offset += 1 << 20 }, []string{`tensor "c"`, "past the end"}},
		{"offset overflow", func(h *Header) { h.Tensors[1].Offset = 1<<64 - 64; h.Tensors[1].Size = 16 }, []string{`tensor "b"`, "past the end"}},
		{"size mismatch", func(h *Header) { h.Tensors[0].Size = 60 }, []string{`tensor "a"`, "size 60", "64 bytes"}},
		{"shape mismatch", func(h *Header) { h.Tensors[0].Shape = []int{4, 5} }, []string{`tensor "a"`, "size 64", "80 bytes"}},
		{"overlap", func(h *Header) { h.Tensors[1].Offset = h.Tensors[0].Offset }, []string{`tensor "b"`, `overlaps tensor "a"`}},
		{"duplicate", func(h *Header) { h.Tensors[2].Name = "a" }, []string{`tensor "a"`, "twice"}},
		{"rank 9", func(h *Header) { h.Tensors[0].Shape = []int{1, 1, 1, 1, 1, 1, 1, 4, 4} }, []string{`tensor "a"`, "rank 9"}},
		{"negative dim", func(h *Header) { h.Tensors[1].Shape = []int{-8} }, []string{`tensor "b"`, "outside"}},
		{"huge dims", func(h *Header) { h.Tensors[1].Shape = []int{1 << 30, 1 << 30, 1 << 30, 1 << 30} }, []string{`tensor "b"`, "overflows"}},
		{"bad type", func(h *Header) { h.Tensors[1].Type = 77 }, []string{`tensor "b"`, "unknown tensor type 77"}},
		{"partial block", func(h *Header) { h.Tensors[2].Shape = []int{31} }, []string{`tensor "c"`, "blocks"}},
		{"unaligned", func(h *Header) { h.Tensors[1].Offset += 8 }, []string{`tensor "b"`, "multiple of 64"}},
		{"inside header", func(h *Header) { h.Tensors[0].Offset = 64 }, []string{`tensor "a"`, "inside the header"}},
		{"empty name", func(h *Header) { h.Tensors[0].Name = "" }, []string{"tensor 0", "empty name"}},
		{"long name", func(h *Header) { h.Tensors[0].Name = strings.Repeat("n", MaxNameLen+1) }, []string{"tensor 0", "above the limit"}},
		{"tokenizer kind", func(h *Header) { h.Tokenizer.Kind = "sentencepiece" }, []string{"tokenizer", "sentencepiece"}},
		{"bpe without json", func(h *Header) { h.Tokenizer.Kind = TokenizerHFBPE }, []string{"tokenizer", "without"}},
		{"bad config", func(h *Header) { h.Config.HiddenSize = -3 }, []string{"hidden_size", "positive"}},
		{"bad sha256", func(h *Header) { h.Provenance.Sources[0].SHA256 = "xyz" }, []string{"provenance", "sha256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHeader(t)
			ts, data := planned(t, small)
			h.Tensors = ts
			blobs := map[uint64][]byte{}
			for _, ti := range ts {
				blobs[ti.Offset] = data[ti.Name]
			}
			last := ts[len(ts)-1]
			size := int(last.Offset + last.Size)
			if _, err := OpenBytes("ok.mmb", rawFile(t, &h, size, blobs)); err != nil {
				t.Fatalf("unmodified: %v", err)
			}
			tt.mutate(&h)
			_, err := OpenBytes("liar.mmb", rawFile(t, &h, size, blobs))
			if err == nil {
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			for _, w := range append(tt.want, "liar.mmb: ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	t.Run("too many tensors", func(t *testing.T) {
		h := testHeader(t)
		h.Tensors = make([]TensorInfo, MaxTensors+1)
		for i := range h.Tensors {
			h.Tensors[i] = TensorInfo{Name: fmt.Sprint(i), Type: quant.F32, Shape: []int{0}, Offset: 1 << 30}
		}
		_, err := OpenBytes("liar.mmb", rawFile(t, &h, 0, nil))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "65537 tensors, above the limit") {
			t.Errorf("got %v", err)
		}
	})
}

// TestHostileMsgpack feeds headers whose msgpack declares huge lengths or
// nests deeply; each must fail fast without allocating for the declared
// length.
func TestHostileMsgpack(t *testing.T) {
	u32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	fixstr := func(s string) []byte { return append([]byte{0xa0 | byte(len(s))}, s...) }
	tests := []struct {
		name string
		hdr  []byte
		want string
	}{
		{"tensors array32 max", cat([]byte{0x81}, fixstr("tensors"), []byte{0xdd}, u32(0xffffffff)), "items"},
		{"tensors array32 just over limit", cat([]byte{0x81}, fixstr("tensors"), []byte{0xdd}, u32(2*MaxTensors+1)), "above the limit"},
		{"map32 max", cat([]byte{0xdf}, u32(0xffffffff)), "items"},
		{"str32 max", cat([]byte{0x81}, fixstr("metadata"), []byte{0x81, 0xdb}, u32(0xffffffff)), "string of"},
		{"bin32 max", cat([]byte{0x81}, fixstr("tokenizer"), []byte{0x81}, fixstr("json"), []byte{0xc6}, u32(0xfffffff0)), "runs past"},
		{"ext32 max", cat([]byte{0xc9}, u32(0xffffffff), []byte{1}), "runs past"},
		{"shape array32", cat([]byte{0x81}, fixstr("tensors"), []byte{0x91, 0x81}, fixstr("shape"), []byte{0xdd}, u32(1<<31)), "items"},
		{"deep nesting", bytes.Repeat([]byte{0x91}, 10000), "nested"},
		{"array claims more than follows", cat([]byte{0xdc, 0x10, 0x00}, bytes.Repeat([]byte{0}, 100)), "items in"},
		{"trailing bytes", []byte{0x80, 0x00}, "after the header"},
		{"truncated", []byte{0x92, 0xcd, 0x00}, "runs past"},
		{"never used code", []byte{0xc1}, "invalid msgpack"},
		{"not a map", []byte{0x93, 1, 2, 3}, "header"},
		{"wrong types", cat([]byte{0x81}, fixstr("tensors"), fixstr("x")), "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := rawFile(t, tt.hdr, 0, nil)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := OpenBytes("hostile.mmb", b)
			runtime.ReadMemStats(&ms1)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want ErrInvalid with %q", err, tt.want)
			}
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 1<<20 {
				t.Errorf("allocated %d bytes", a)
			}
		})
	}
	// A header length above the limit or past the end is refused before
	// anything is read.
	b := smallFile(t)
	binary.LittleEndian.PutUint64(b[16:], MaxHeaderSize+1)
	if _, err := OpenBytes("big.mmb", b); err == nil || !strings.Contains(err.Error(), "above the limit") {
		t.Errorf("huge header length: %v", err)
	}
	binary.LittleEndian.PutUint64(b[16:], 1<<63)
	if _, err := OpenBytes("big.mmb", b); err == nil || !strings.Contains(err.Error(), "above the limit") {
		t.Errorf("header length 2^63: %v", err)
	}
}

// TestBitFlips flips one bit in every byte of a small file: Verify's checks
// must catch each one.
func TestBitFlips(t *testing.T) {
	b := smallFile(t)
	verify := func(b []byte) error {
		f, err := OpenBytes("flip.mmb", b)
		if err != nil {
			return err
		}
		return errors.Join(f.VerifyChecksums(), f.checkPadding())
	}
	if err := verify(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 1 << (i % 8)
		if err := verify(c); err == nil {
			t.Fatalf("flipped bit %d of byte %d: not caught", i%8, i)
		}
	}
	// Through the file system: Verify names the damaged tensor; Open
	// without VerifyChecksums does not read the data.
	f, err := OpenBytes("x", b)
	if err != nil {
		t.Fatal(err)
	}
	info := f.Header.Tensors[5]
	c := bytes.Clone(b)
	c[info.Offset+3] ^= 0x10
	path := filepath.Join(t.TempDir(), "flip.mmb")
	if err := os.WriteFile(path, c, 0o644); err != nil {
		t.Fatal(err)
	}
	err = Verify(path)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), `tensor "q8.mat"`) || !strings.Contains(err.Error(), path) {
		t.Errorf("Verify: %v", err)
	}
	if _, err := Open(path, OpenOptions{VerifyChecksums: true}); !errors.Is(err, ErrChecksum) {
		t.Errorf("Open verifying: %v", err)
	}
	f2, err := Open(path, OpenOptions{})
	if err != nil {
		t.Errorf("Open without verifying: %v", err)
	} else {
		f2.Close()
		f2.Close()
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	h := testHeader(t)
	data := testData(t, smallPlan, 4)
	path := filepath.Join(dir, "m.mmb")
	writeModel(t, path, h, smallPlan, data)

	// Existing destination without Force.
	if _, err := Create(path, h, smallPlan, CreateOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over an existing file: %v", err)
	}
	// With Force it is replaced.
	data2 := testData(t, smallPlan, 5)
	w, err := Create(path, h, smallPlan, CreateOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range smallPlan {
		if err := w.WriteTensor(s.Name, data2[s.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	f, err := Open(path, OpenOptions{VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	if tt, _ := f.Tensor("q8.mat"); !bytes.Equal(tt.Data, data2["q8.mat"]) {
		t.Error("Force did not replace the file")
	}
	f.Close()

	// The destination appears between Create and Commit.
	late := filepath.Join(dir, "late.mmb")
	w, err = Create(late, h, smallPlan, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range smallPlan {
		w.WriteTensor(s.Name, data[s.Name])
	}
	os.WriteFile(late, []byte("someone else's"), 0o644)
	if err := w.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Commit over a file created meanwhile: %v", err)
	}
	if b, _ := os.ReadFile(late); string(b) != "someone else's" {
		t.Error("Commit overwrote a file without Force")
	}
	os.Remove(late)

	// Misuse of WriteTensor, and Commit with tensors missing.
	w, err = Create(filepath.Join(dir, "bad.mmb"), h, smallPlan, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"nope", nil, "not in the plan"},
		{"f32.vec", make([]byte, 19), "19 bytes"},
		{"f32.vec", data["f32.vec"], ""},
		{"f32.vec", data["f32.vec"], "twice"},
	} {
		err := w.WriteTensor(c.name, c.data)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("WriteTensor(%q, %d bytes) = %v; want %q", c.name, len(c.data), err, c.want)
		}
	}
	if err := w.Commit(); err == nil || !strings.Contains(err.Error(), "6 planned tensors were not written") {
		t.Errorf("Commit with tensors missing: %v", err)
	}
	if err := w.WriteTensor("f16.mat", data["f16.mat"]); err == nil {
		t.Error("WriteTensor after a failed Commit succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}

	// Abort leaves nothing behind.
	w, err = Create(filepath.Join(dir, "aborted.mmb"), h, smallPlan, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteTensor("f32.vec", data["f32.vec"])
	if err := w.Abort(); err != nil {
		t.Error(err)
	}
	if err := w.Abort(); err != nil {
		t.Error(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "m.mmb" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left in the folder: %v; want only m.mmb", names)
	}

	// Bad plans and headers are refused at Create.
	for _, c := range []struct {
		name string
		h    func(*Header)
		plan []TensorSpec
		want string
	}{
		{"dup", nil, []TensorSpec{{"x", quant.F32, []int{1}}, {"x", quant.F32, []int{1}}}, "twice"},
		{"rank", nil, []TensorSpec{{"x", quant.F32, []int{1, 1, 1, 1, 1}}}, "rank 5"},
		{"block", nil, []TensorSpec{{"x", quant.Q4_0, []int{3}}}, "blocks"},
		{"tensors in header", func(h *Header) { h.Tensors = []TensorInfo{{Name: "x"}} }, nil, "must be empty"},
		{"tokenizer", func(h *Header) { h.Tokenizer.Kind = "" }, nil, "tokenizer"},
		{"long metadata", func(h *Header) { h.Metadata = map[string]string{"k": strings.Repeat("v", MaxStringLen+1)} }, nil, "limit"},
	} {
		hh := testHeader(t)
		if c.h != nil {
			c.h(&hh)
		}
		if _, err := Create(filepath.Join(dir, "x.mmb"), hh, c.plan, CreateOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Create = %v; want %q", c.name, err, c.want)
		}
	}
}

// TestWriterConcurrent writes tensors from several goroutines (run with
// -race) and an empty plan.
func TestWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	plan := make([]TensorSpec, 40)
	for i := range plan {
		plan[i] = TensorSpec{fmt.Sprintf("t%02d", i), quant.Types[i%len(quant.Types)], []int{i%3 + 1, 64}}
	}
	data := testData(t, plan, 6)
	path := filepath.Join(dir, "c.mmb")
	w, err := Create(path, testHeader(t), plan, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range plan {
		wg.Go(func() {
			if err := w.WriteTensor(s.Name, data[s.Name]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path); err != nil {
		t.Fatal(err)
	}

	empty := filepath.Join(dir, "empty.mmb")
	w, err = Create(empty, testHeader(t), nil, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(empty, OpenOptions{VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors()) != 0 {
		t.Error("tensors in an empty file")
	}
	f.Close()
}

// TestWriterMemory checks that the writer holds no tensor data: writing
// 32 MiB of tensors from one reused buffer allocates little.
func TestWriterMemory(t *testing.T) {
	plan := make([]TensorSpec, 32)
	for i := range plan {
		plan[i] = TensorSpec{fmt.Sprintf("t%d", i), quant.F32, []int{512, 512}}
	}
	buf := make([]byte, 512*512*4)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "big.mmb")
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	w, err := Create(path, testHeader(t), plan, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range plan {
		if err := w.WriteTensor(s.Name, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 1<<20 {
		t.Errorf("writing 32 MiB allocated %d bytes", a)
	}
}
