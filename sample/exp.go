package sample

import "math"

// expNeg returns e**x for x <= 0, bit for bit the same on every platform.
//
// math.Exp is not: on amd64 it is an assembly routine (whose choice can
// depend on the CPU) and elsewhere the pure Go one, and the compiler may fuse
// a*b+c into one FMA instruction on some architectures. The sampler's
// probabilities feed a cumulative sum that the random draw is compared with,
// so a 1-ulp difference could (very rarely) change a token. This is the pure
// Go algorithm of math.exp (FreeBSD's e_exp.c) with every product rounded by
// an explicit float64 conversion, which the Go spec says prevents fusion.
//
// Arguments below -700 (and NaN) give 0: e**-700 is ~1e-304, far below
// anything that can change a sum whose largest term is 1, and cutting there
// keeps the result out of the subnormal range. Arguments above -2**-28
// give 1+x (as math.Exp does near zero).
func expNeg(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		log2e = 1.44269504088896338700e+00

		p1 = 1.66666666666666657415e-01
		p2 = -2.77777777770155933842e-03
		p3 = 6.61375632143793436117e-05
		p4 = -1.65339022054652515390e-06
		p5 = 4.13813679705723846039e-08
	)
	switch {
	case !(x >= -700): // also NaN
		return 0
	case x > -1.0/(1<<28):
		return 1 + x
	}
	// x = k*ln2 + r, |r| <= ln2/2, r = hi - lo for extra precision.
	k := int(float64(log2e*x) - 0.5)
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	r := hi - lo
	t := float64(r * r)
	c := r - float64(t*(p1+float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))))
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	// k >= -1010 here, so 2**k is a normal number and the product is exact
	// scaling.
	return y * math.Float64frombits(uint64(1023+k)<<52)
}
