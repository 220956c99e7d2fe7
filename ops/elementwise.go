package ops

import (
	"fmt"
	"math"
)

// Elementwise kernels. Unless stated otherwise dst may be the same slice as
// an input (in place), but must not partially overlap one. Lengths must
// match; the functions panic otherwise.

func checkLen(name string, want int, lens ...int) {
	for _, l := range lens {
		if l != want {
			panic(fmt.Sprintf("ops: %s: length %d, want %d", name, l, want))
		}
	}
}

// exp32 returns e^v in float32, within 1 ulp of the correctly rounded value
// (it equals float32(math.Exp(float64(v))) for over 99% of inputs and is
// about three times faster; the scan evaluates E*N of them per token).
//
// In float64: v = k*ln2 + r with k = round(v*log2(e)) and |r| <= ln2/2,
// e^r by its degree-8 Taylor polynomial (truncation error below 1e-8
// relative), times 2^k; then one rounding to float32. Outside (-87, 88),
// where the result is subnormal, zero, infinite or NaN, it defers to
// math.Exp.
func exp32(v float32) float32 {
	if !(v > -87 && v < 88) {
		return float32(math.Exp(float64(v)))
	}
	const magic = 0x1.8p52 // adding it rounds to an integer held in the low bits
	x := float64(v)
	kf := x*math.Log2E + magic
	k := int64(math.Float64bits(kf)) << 13 >> 13
	kf -= magic
	r := x - kf*math.Ln2
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320))))))))
	return float32(p * math.Float64frombits(uint64(k+1023)<<52))
}

// SigmoidScalar returns 1/(1+e^-v). It is 0 for v below about -104 and 1
// above about 17, never NaN for finite v.
func SigmoidScalar(v float32) float32 { return 1 / (1 + exp32(-v)) }

// SiLUScalar returns v*sigmoid(v).
func SiLUScalar(v float32) float32 { return v / (1 + exp32(-v)) }

// SoftplusScalar returns v if v > 20, else log(1+e^v) (SPEC's threshold, as
// PyTorch's softplus).
func SoftplusScalar(v float32) float32 {
	if v > 20 {
		return v
	}
	return float32(math.Log1p(math.Exp(float64(v))))
}

// Sigmoid sets dst[i] = 1/(1+exp(-x[i])):
//
//	for i, v := range x { dst[i] = 1 / (1 + exp(-v)) }
//
// With SIMD the exp is the vector kernel's (vexp, within 2 ulp).
func Sigmoid(dst, x []float32) {
	checkLen("Sigmoid", len(dst), len(x))
	x = x[:len(dst)]
	if cur().vec8 {
		sigmoidVec(dst, x)
		return
	}
	for i, v := range x {
		dst[i] = SigmoidScalar(v)
	}
}

// SiLU sets dst[i] = x[i]*sigmoid(x[i]):
//
//	for i, v := range x { dst[i] = v / (1 + exp(-v)) }
//
// With SIMD the exp is the vector kernel's (vexp, within 2 ulp).
func SiLU(dst, x []float32) {
	checkLen("SiLU", len(dst), len(x))
	x = x[:len(dst)]
	if cur().vec8 {
		siluVec(dst, x)
		return
	}
	for i, v := range x {
		dst[i] = SiLUScalar(v)
	}
}

// Softplus sets dst[i] = x[i] if x[i] > 20 else log(1+exp(x[i])):
//
//	for i, v := range x { dst[i] = SoftplusScalar(v) }
//
// With SIMD it is the vector kernel softplusAVX2, max(v, 0) + log1p(e^-|v|)
// in float32, which gives v itself above 20 as the threshold does; error
// bound in TestElementwise.
func Softplus(dst, x []float32) {
	checkLen("Softplus", len(dst), len(x))
	x = x[:len(dst)]
	if cur().vec8 {
		softplusVec(dst, x)
		return
	}
	for i, v := range x {
		dst[i] = SoftplusScalar(v)
	}
}

// MulSiLU sets dst[i] = y[i]*silu(z[i]), the mixer's output gate.
func MulSiLU(dst, y, z []float32) {
	checkLen("MulSiLU", len(dst), len(y), len(z))
	y, z = y[:len(dst)], z[:len(dst)]
	for i, v := range y {
		dst[i] = v * SiLUScalar(z[i])
	}
}

// ReLU sets dst[i] = max(x[i], 0).
func ReLU(dst, x []float32) {
	checkLen("ReLU", len(dst), len(x))
	x = x[:len(dst)]
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		dst[i] = v
	}
}

// Add sets dst[i] = a[i] + b[i].
func Add(dst, a, b []float32) {
	checkLen("Add", len(dst), len(a), len(b))
	a, b = a[:len(dst)], b[:len(dst)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

// Mul sets dst[i] = a[i] * b[i].
func Mul(dst, a, b []float32) {
	checkLen("Mul", len(dst), len(a), len(b))
	a, b = a[:len(dst)], b[:len(dst)]
	for i, v := range a {
		dst[i] = v * b[i]
	}
}

// Scale sets dst[i] = s * x[i].
func Scale(dst, x []float32, s float32) {
	checkLen("Scale", len(dst), len(x))
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = s * v
	}
}

// AddScaled sets dst[i] += s * x[i] (axpy).
func AddScaled(dst, x []float32, s float32) {
	checkLen("AddScaled", len(dst), len(x))
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += s * v
	}
}

// Dot returns sum_i a[i]*b[i]. It sums in four interleaved float32
// accumulators (s[i mod 4] for the whole groups of four, then the last
// len%4 products into s[0]) and returns (s0+s1)+(s2+s3); the plain loop is:
//
//	var s float32
//	for i := range a { s += a[i] * b[i] }
func Dot(a, b []float32) float32 {
	checkLen("Dot", len(a), len(b))
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	for len(a) >= 4 {
		a4, b4 := (*[4]float32)(a), (*[4]float32)(b)
		s0 += a4[0] * b4[0]
		s1 += a4[1] * b4[1]
		s2 += a4[2] * b4[2]
		s3 += a4[3] * b4[3]
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i, v := range a {
		s0 += v * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// RMSNorm sets dst = x * (mean(x^2) + eps)^-1/2 * w (SPEC):
//
//	var ss float64
//	for _, v := range x { ss += float64(v) * float64(v) }
//	r := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
//	for i := range x { dst[i] = x[i] * r * w[i] }
//
// The sum of squares is accumulated in float64 (in four interleaved
// accumulators), so it is accurate to float32 rounding for any length. dst
// may be x. An empty x leaves dst empty.
func RMSNorm(dst, x, w []float32, eps float32) {
	checkLen("RMSNorm", len(dst), len(x), len(w))
	if len(x) == 0 {
		return
	}
	x, w = x[:len(dst)], w[:len(dst)]
	var s0, s1, s2, s3 float64
	y := x
	for len(y) >= 4 {
		y4 := (*[4]float32)(y)
		a, b, c, d := float64(y4[0]), float64(y4[1]), float64(y4[2]), float64(y4[3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
		y = y[4:]
	}
	for _, v := range y {
		s0 += float64(v) * float64(v)
	}
	ss := (s0 + s1) + (s2 + s3)
	r := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		dst[i] = v * r * w[i]
	}
}
