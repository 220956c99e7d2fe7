package quant

import (
	"math/rand/v2"
	"testing"
)

// The benchmarks encode and decode a row of 4096 normal values; SetBytes
// counts the float32 side (16 KiB), so MB/s compare across types.
const benchLen = 4096

func benchRow() []float32 {
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, benchLen)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func BenchmarkEncode(b *testing.B) {
	x := benchRow()
	for _, typ := range Types {
		b.Run(typ.String(), func(b *testing.B) {
			n, _ := typ.RowBytes(len(x))
			dst := make([]byte, n)
			b.SetBytes(4 * benchLen)
			b.ReportAllocs()
			for b.Loop() {
				if err := Encode(typ, dst, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	x := benchRow()
	for _, typ := range Types {
		b.Run(typ.String(), func(b *testing.B) {
			src, err := Quantize(typ, x)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]float32, benchLen)
			b.SetBytes(4 * benchLen)
			b.ReportAllocs()
			for b.Loop() {
				if err := Decode(typ, dst, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkF16ToF32(b *testing.B) {
	b.SetBytes(2 * 65536)
	var sink float32
	for b.Loop() {
		for h := range 65536 {
			sink += F16ToF32(uint16(h))
		}
	}
	_ = sink
}

func BenchmarkF32ToF16(b *testing.B) {
	x := benchRow()
	b.SetBytes(4 * benchLen)
	var sink uint16
	for b.Loop() {
		for _, v := range x {
			sink ^= F32ToF16(v)
		}
	}
	_ = sink
}
