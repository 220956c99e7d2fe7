package safetensors

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// lazyHeader is a safetensors file of a header that declares hlen bytes,
// generated as it is read (so a test of a 100 MB header holds none of it):
// the prefix, then the filler repeated to the end.
type lazyHeader struct {
	hlen           uint64
	prefix, filler string
}

func (l *lazyHeader) size() int64 { return 8 + int64(l.hlen) }

func (l *lazyHeader) ReadAt(p []byte, off int64) (int, error) {
	var lenField [8]byte
	binary.LittleEndian.PutUint64(lenField[:], l.hlen)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		var src string
		switch {
		case pos >= l.size():
			return n, io.EOF
		case pos < 8:
			src = string(lenField[pos:])
		case pos-8 < int64(len(l.prefix)):
			src = l.prefix[pos-8:]
		default:
			tile := strings.Repeat(l.filler, 65536/len(l.filler))
			src = tile[(pos-8-int64(len(l.prefix)))%int64(len(l.filler)):]
		}
		src = src[:min(int64(len(src)), l.size()-pos)]
		n += copy(p[n:], src)
	}
	return n, nil
}

// measure runs fn and returns the bytes it allocated and the time it took.
func measure(fn func()) (uint64, time.Duration) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, el
}

// TestHugeShapeArray checks that a shape array of many megabytes is refused
// at its ninth dimension, while decoding, and that a header of 100 MB is
// refused by its length before any of it is read: each in well under two
// seconds and 100 MB.
func TestHugeShapeArray(t *testing.T) {
	for _, tc := range []struct {
		name string
		hlen uint64
		want string
	}{
		{"100 MB header", 100 << 20, "header length 104857600 exceeds the 16777216-byte limit"},
		{"15 MB shape", 15 << 20, `tensor "a": bad header record: rank 9 or more exceeds the limit of 8`},
	} {
		l := &lazyHeader{hlen: tc.hlen, prefix: `{"a":{"dtype":"U8","shape":[1`, filler: ",1"}
		var err error
		alloc, el := measure(func() { _, err = NewReader(l, l.size(), "huge.safetensors") })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if alloc > 40<<20 || el > slowdown*time.Second {
			t.Errorf("%s: %d MB allocated in %v", tc.name, alloc>>20, el)
		}
	}
}

// TestRecordFieldLimits checks the other fields' limits during decoding:
// data_offsets of three or more values, values out of range, unknown
// fields skipped (nested), null fields as missing.
func TestRecordFieldLimits(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2,3,4]}}`, "data_offsets has 3 values or more"},
		{`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, "shape value 1.5 is not an integer"},
		{`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1e1]}}`, "data_offsets value 1e1 is not an integer"},
		{`{"a":{"dtype":"U8","shape":"x","data_offsets":[0,1]}}`, "shape is x, not an array"},
		{`{"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}}`, "dtype 7 is not a string"},
		{`{"a":{"dtype":"U8","shape":null,"data_offsets":[0,1]}}`, "lacks"},
		{`{"a":[1]}`, "bad header record"},
	} {
		file := build(tc.header, []byte{1})
		_, err := NewReader(bytes.NewReader(file), int64(len(file)), "bad.safetensors")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.header, err, tc.want)
		}
	}
	ok := `{"a":{"x":{"y":[[1],{"z":null}]},"dtype":"U8","shape":[1],"data_offsets":[0,1],"w":[]}}`
	file := build(ok, []byte{1})
	if _, err := NewReader(bytes.NewReader(file), int64(len(file)), "ok"); err != nil {
		t.Errorf("%s: %v", ok, err)
	}
}

// TestZeroSizeOverlapsNothing checks that a zero-size tensor is accepted at
// another tensor's start or inside it, listed before or after it, and that
// a real overlap is still refused with zero-size tensors between the two.
func TestZeroSizeOverlapsNothing(t *testing.T) {
	a := `"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}`
	for _, h := range []string{
		`{` + a + `,"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`,
		`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},` + a + `}`,
		`{` + a + `,"z":{"dtype":"F32","shape":[0,3],"data_offsets":[1,1]}}`,
		`{` + a + `,"z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`,
	} {
		file := build(h, []byte{1, 2, 3})
		if _, err := NewReader(bytes.NewReader(file), int64(len(file)), "ok"); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	bad := `{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"z":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},` +
		`"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"c":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`
	file := build(bad, []byte{1, 2, 3})
	_, err := NewReader(bytes.NewReader(file), int64(len(file)), "bad")
	if err == nil || !strings.Contains(err.Error(), `tensor "b" (bytes 1..2) overlaps tensor "a" (bytes 0..3)`) {
		t.Errorf("overlap: %v", err)
	}
}
