//go:build cgo

package ort

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/onnxgraph"
)

// procKB reads a "Key:   123 kB" line of /proc/self/status.
func procKB(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == key+":" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

// mappedKB is the resident size of the mappings of file in /proc/self/smaps.
func mappedKB(file string) (size, rss int64) {
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return -1, -1
	}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && f[5] == file
			continue
		}
		if in && len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Size:":
				size += v
			case "Rss:":
				rss += v
			}
		}
	}
	return size, rss
}

// TestMemoryProbe (MMRUN_ORT_MEMPROBE=1) shows where ONNX Runtime copies
// external-data weights: resident memory and the weight file's mapping after
// session creation and after a run, for MatMul (float32) and MatMulNBits
// (int8, int4), prepacking on and off. It informs engine/ort/README.md.
func TestMemoryProbe(t *testing.T) {
	if os.Getenv("MMRUN_ORT_MEMPROBE") == "" {
		t.Skip("set MMRUN_ORT_MEMPROBE=1 to measure")
	}
	needORT(t)
	const k, n = 4096, 4096
	w := randFloats(7, n*k)
	dir := t.TempDir()
	file := filepath.Join(dir, "weights.bin")
	type variant struct {
		name string
		raw  []byte
		add  func(b *onnxgraph.Builder, x string, off int64) string
	}
	q8, _ := onnxgraph.QuantizeNBits(w, n, k, 8, 32)
	q4, _ := onnxgraph.QuantizeNBits(w, n, k, 4, 32)
	nbits := func(q *onnxgraph.NBits) func(b *onnxgraph.Builder, x string, off int64) string {
		return func(b *onnxgraph.Builder, x string, off int64) string {
			bw := b.InitExternal("qw", onnxgraph.Uint8, q.BlockDims(), onnxgraph.ExternalData{Location: "weights.bin", Offset: off, Length: int64(len(q.Blocks))})
			s := b.InitFloat32("scales", []int64{int64(len(q.Scales))}, q.Scales)
			return b.MatMulNBitsNode(x, bw, s, "", k, n, int64(q.Bits), int64(q.BlockSize), 0)
		}
	}
	variants := []variant{
		{"matmul f32", onnxgraph.Float32Bytes(w), func(b *onnxgraph.Builder, x string, off int64) string {
			wn := b.InitExternal("w", onnxgraph.Float, []int64{k, n}, onnxgraph.ExternalData{Location: "weights.bin", Offset: off, Length: 4 * k * n})
			return b.MatMul(x, wn)
		}},
		{"matmulnbits int8", q8.Blocks, nbits(q8)},
		{"matmulnbits int4", q4.Blocks, nbits(q4)},
	}
	for _, v := range variants {
		const off = 1 << 16
		if err := os.WriteFile(file, append(make([]byte, off), v.raw...), 0o644); err != nil {
			t.Fatal(err)
		}
		b := onnxgraph.NewBuilder("probe")
		x := b.Input("x", onnxgraph.Float, onnxgraph.D(1), onnxgraph.D(k))
		b.Output(b.Rename(v.add(b, x, off), "y"), onnxgraph.Float, onnxgraph.D(1), onnxgraph.D(n))
		model, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, disable := range []bool{false, true} {
			rss0 := procKB("VmRSS")
			s, err := NewSession(model, []string{"x"}, []string{"y"}, Options{IntraOpThreads: 1, DisablePrepacking: disable, ExternalDataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			rss1 := procKB("VmRSS")
			_, m1 := mappedKB(file)
			if _, err := s.Run(Tensor{Shape: []int64{1, k}, Data: randFloats(1, k)}); err != nil {
				t.Fatal(err)
			}
			rss2 := procKB("VmRSS")
			msize, m2 := mappedKB(file)
			t.Logf("%-17s weights %6d KiB  disable_prepacking=%-5v  RSS +%6d KiB at creation, +%6d KiB after a run; weight file mapped %6d KiB (resident %d -> %d KiB)",
				v.name, len(v.raw)>>10, disable, rss1-rss0, rss2-rss0, msize, m1, m2)
			s.Close()
		}
	}
}
