package torchzip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

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

// repeatPickle is PROTO 2, head, body repeated n times, STOP.
func repeatPickle(head, body string, n int) []byte {
	var b bytes.Buffer
	b.Grow(3 + len(head) + n*len(body))
	b.WriteString("\x80\x02")
	b.WriteString(head)
	for range n {
		b.WriteString(body)
	}
	b.WriteByte('.')
	return b.Bytes()
}

// TestContainerBombs checks that every opcode that builds a container, or
// puts items in one, counts against MaxItems: pickles of just under
// MaxPickleBytes that build millions of containers are refused within two
// seconds and 100 MB.
func TestContainerBombs(t *testing.T) {
	const size = MaxPickleBytes - 1024
	for _, tc := range []struct{ name, head, body string }{
		{"TUPLE1 chain", "N", "\x85"},
		{"TUPLE2 chain", "N", "N\x86"},
		{"TUPLE3 chain", "N", "NN\x87"},
		{"EMPTY_TUPLE", "", ")0"},
		{"EMPTY_LIST", "", "]0"},
		{"EMPTY_DICT", "", "}0"},
		{"TUPLE", "", "(t0"},
		{"LIST", "", "(l0"},
		{"DICT", "", "(d0"},
		{"APPENDS", "]", "(Ne"},
		{"APPEND", "]", "Na"},
		{"SETITEMS", "}", "(NNu"},
		{"SETITEM", "}", "NNs"},
		{"NEWOBJ OrderedDict", "ccollections\nOrderedDict\nq\x000", "h\x00)\x810"},
		{"REDUCE OrderedDict", "ccollections\nOrderedDict\nq\x000", "h\x00)R0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := repeatPickle(tc.head, tc.body, MaxItems+1)
			var err error
			alloc, el := measure(func() { _, err = unpickle(p, nil) })
			if err == nil || !strings.Contains(err.Error(), "more than 1048576 containers and container items (the limit)") {
				t.Errorf("error %v", err)
			}
			if alloc > 100<<20+uint64(len(p)) || el > slowdown*2*time.Second {
				t.Errorf("%d MB allocated in %v", alloc>>20, el)
			}
		})
	}
}

// deflatedZip writes a zip whose entry name holds head, body repeated n
// times and tail, deflated, without holding the whole entry in memory.
func deflatedZip(t *testing.T, name, head, body, tail string, n int) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	z.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	w, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(head))
	chunk := []byte(strings.Repeat(body, 65536/len(body)))
	per := len(chunk) / len(body)
	for n > 0 {
		k := min(n, per)
		w.Write(chunk[:k*len(body)])
		n -= k
	}
	w.Write([]byte(tail))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPickleBomb checks the torch zip: about 65 KB holding a 64 MiB
// data.pkl of TUPLE1 chains is refused by data.pkl's size at once, and one
// just under the size limit by the container count, each within two
// seconds and 100 MB.
func TestPickleBomb(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{64 << 20, "a/data.pkl of 67108868 bytes exceeds the 16777216-byte limit"},
		{MaxPickleBytes - 4, "more than 1048576 containers and container items (the limit)"},
	} {
		z := deflatedZip(t, "a/data.pkl", "\x80\x02N", "\x85", ".", tc.n)
		var err error
		alloc, el := measure(func() { _, err = NewReader(bytes.NewReader(z), int64(len(z)), "bomb.pt") })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "bomb.pt: ") {
			t.Errorf("%d TUPLE1s in a %d-byte zip: error %v, want %q", tc.n, len(z), err, tc.want)
		}
		if alloc > 100<<20 || el > slowdown*2*time.Second {
			t.Errorf("%d TUPLE1s: %d MB allocated in %v", tc.n, alloc>>20, el)
		}
	}
}

// TestBroadcastBudget checks stride-0 views: torch.zeros(1).expand(2^26,
// 64) (16 GiB when read) is refused at open, naming the tensor and the
// numbers, without allocating for it; one within the budget reads right,
// row by row.
func TestBroadcastBudget(t *testing.T) {
	one := f32bytes(7)
	z := zipWith(t, map[string][]byte{"a/data.pkl": tensorPickle(1, 0, []int{1 << 26, 64}, []int{0, 0}), "a/data/0": one})
	var err error
	alloc, el := measure(func() { _, err = NewReader(bytes.NewReader(z), int64(len(z)), "expand.pt") })
	want := `tensor "x": a view of size [67108864 64] and stride [0 0] repeats its storage's elements: 1 stored element would expand to 4294967296 elements of F32 (4 bytes each), above the budget of 268435456 bytes`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	if alloc > 10<<20 || el > slowdown*time.Second {
		t.Errorf("%d MB allocated in %v", alloc>>20, el)
	}

	six := f32bytes(0, 1, 2, 3, 4, 5)
	for _, tc := range []struct {
		numel, offset int
		size, stride  []int
		first, last   float32
		n             int
	}{
		{1, 0, []int{1000, 64}, []int{0, 0}, 0, 0, 64000},
		{6, 2, []int{300, 3}, []int{0, 1}, 2, 4, 900},
		{6, 0, []int{2, 400}, []int{3, 0}, 0, 3, 800},
	} {
		data := six[:4*tc.numel]
		z := zipWith(t, map[string][]byte{"a/data.pkl": tensorPickle(tc.numel, tc.offset, tc.size, tc.stride), "a/data/0": data})
		f, err := NewReader(bytes.NewReader(z), int64(len(z)), "ok.pt")
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.ReadFloat32("x")
		name := fmt.Sprint(tc.size, tc.stride)
		if err != nil || len(v) != tc.n || v[0] != tc.first || v[len(v)-1] != tc.last {
			t.Errorf("%s: %d values, %v", name, len(v), err)
		}
	}
}
