package convert

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// writeSyntheticSafetensors writes a checkpoint folder (config.json and a
// safetensors file) of the named synthetic shape, one tensor at a time.
func writeSyntheticSafetensors(tb testing.TB, dir, shape string) int64 {
	tb.Helper()
	in, err := SyntheticInput(shape, 1)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), in.Config.JSON(), 0o644); err != nil {
		tb.Fatal(err)
	}
	type entry struct {
		DType   string  `json:"dtype"`
		Shape   []int   `json:"shape"`
		Offsets []int64 `json:"data_offsets"`
	}
	hdr := map[string]any{}
	var names []string
	var off int64
	for _, w := range in.Config.Weights() {
		st, ok := in.Tensors[w.Name]
		if !ok {
			continue
		}
		n := int64(st.NumElements()) * 4
		hdr[w.Name] = entry{"F32", w.Shape, []int64{off, off + n}}
		names = append(names, w.Name)
		off += n
	}
	hb, _ := json.Marshal(hdr)
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(len(hb)))
	w.Write(hb)
	for _, n := range names {
		raw, err := in.Tensors[n].Reader.ReadRaw(n)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(raw)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return off
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes; reset
// starts a new peak (Linux: /proc/self/clear_refs).
func peakRSS(reset bool) int64 {
	if reset {
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		return 0
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkConvert130M converts a 130M-parameter f32 safetensors checkpoint
// (mamba-130m shape, random weights) to int8, reporting the throughput over
// the source bytes and the peak resident memory of the conversion, which
// streams: it stays near the largest tensor (the 154 MB embeddings) plus
// its encoding, not the model's 516 MB.
//
//	go test -run '^$' -bench Convert130M -benchtime 1x ./convert
func BenchmarkConvert130M(b *testing.B) {
	for _, typ := range []quant.Type{quant.Q8_0, quant.F16} {
		b.Run(typ.String(), func(b *testing.B) {
			dir := b.TempDir()
			size := writeSyntheticSafetensors(b, dir, "mamba-130m")
			b.SetBytes(size)
			b.ReportAllocs()
			var peak int64
			for b.Loop() {
				peakRSS(true)
				if _, err := Convert(dir, filepath.Join(dir, "out.mmq"), Options{Policy: Policy{Type: typ}, Force: true}); err != nil {
					b.Fatal(err)
				}
				peak = max(peak, peakRSS(false))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		})
	}
}
