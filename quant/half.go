package quant

import "math"

// Scalar conversions between float32 and the two 16-bit float formats.
//
// F16 is IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10
// mantissa bits; largest finite 65504, smallest normal 2^-14, smallest
// subnormal 2^-24. BF16 is the top half of an IEEE binary32: 1 sign bit,
// 8 exponent bits (bias 127), 7 mantissa bits.
//
// The widening conversions are exact. The narrowing ones round to nearest,
// ties to even, as IEEE 754 and hardware conversion instructions do.

// F16ToF32 converts an IEEE 754 half-precision value (its bits) to float32.
// The conversion is exact for every input: subnormals become normal float32
// values, infinities stay infinite and NaNs keep their sign and payload
// (shifted into the float32 mantissa's top bits).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal: mant * 2^-24. Normalise: shift the leading one into the
	// implicit-bit position (bit 10), adjusting the exponent.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 converts f to IEEE 754 half precision (its bits), rounding to
// nearest with ties to even. Finite values of magnitude 65520 or more (the
// midpoint between 65504 and 2^16) become infinity; values below the normal
// range round to the nearest subnormal (or zero), keeping the sign. NaN
// stays NaN: the result is a quiet NaN carrying the top mantissa bits.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	abs := b & 0x7fffffff
	switch {
	case abs > 0x7f800000: // NaN: keep the payload's top bits, set quiet bit
		return sign | 0x7e00 | uint16(abs>>13)&0x3ff
	case abs >= 0x477ff000: // >= 65520 (including +-inf): overflow to inf
		return sign | 0x7c00
	case abs < 0x38800000: // below 2^-14: subnormal half or zero
		e := abs >> 23 // biased float32 exponent, <= 112
		if e < 102 {   // < 2^-25: rounds to zero (2^-25 itself ties to 0)
			return sign
		}
		// value = m * 2^(e-150); in units of 2^-24 that is m >> (126-e).
		m := abs&0x7fffff | 0x800000
		shift := 126 - e // 14..24
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && q&1 == 1 {
			q++ // may carry into 0x400, the smallest normal: correct
		}
		return sign | uint16(q)
	}
	// Normal: rebias the exponent from 127 to 15 and round off 13 bits.
	r := abs - (127-15)<<23
	q := r >> 13
	rem := r & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && q&1 == 1 {
		q++ // a carry into the exponent is correct; cannot reach inf here
	}
	return sign | uint16(q)
}

// BF16ToF32 converts a bfloat16 value (its bits) to float32. It is exact:
// the bits become the float32's top half.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 converts f to bfloat16 (its bits), rounding to nearest with ties
// to even. Values that round past the largest finite bfloat16 become
// infinity. NaN stays NaN and is made quiet (the payload's top bits are
// kept, so a NaN never turns into infinity by truncation).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
