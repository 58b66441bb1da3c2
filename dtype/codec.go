package dtype

import "math"

// Largest finite magnitudes of the FP8 formats.
const (
	MaxE4M3 = 448   // largest finite float8_e4m3fn value (code 0x7E)
	MaxE5M2 = 57344 // largest finite float8_e5m2 value (code 0x7B)
)

// roundMag rounds the finite, non-negative float32 with bits u (sign bit
// clear) to a binary format with manBits explicit mantissa bits and exponent
// bias bias, round-to-nearest ties-to-even, with an unbounded exponent range
// upwards and gradual underflow (subnormals) at the bottom. It returns the
// format's magnitude code: (biasedExp-1)<<manBits + significand for normal
// results, the significand for subnormal ones; a carry out of the mantissa
// correctly moves to the next exponent. Codes at or beyond the format's
// infinity/NaN encodings mean overflow and must be handled by the caller.
// float32 subnormal inputs round to zero (valid for all targets used here,
// whose smallest subnormal is far above 2^-126).
func roundMag(u uint32, manBits uint, bias int) uint32 {
	exp := int(u >> 23)
	if exp == 0 {
		return 0
	}
	full := u&0x7fffff | 1<<23
	e := exp - 127 + bias // target biased exponent
	shift := int(23 - manBits)
	if e < 1 {
		shift += 1 - e
		e = 0
	}
	if shift > 24 {
		// full < 2^24 <= half an ulp of the smallest subnormal: rounds to 0
		return 0
	}
	s := uint(shift)
	m := full >> s
	rem := full & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || (rem == half && m&1 == 1) {
		m++
	}
	if e == 0 {
		return m
	}
	return uint32(e-1)<<manBits + m
}

// F16ToF32 converts IEEE binary16 bits to float32 (exact; NaN payloads kept).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: normalise the mantissa into a float32 normal number.
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// F32ToF16 converts a float32 to IEEE binary16 bits with round-to-nearest
// ties-to-even (as PyTorch's c10::Half): finite values that round above
// 65504 become ±inf, infinities stay infinite, NaN becomes a quiet NaN with
// the input's sign (0x7E00 / 0xFE00).
func F32ToF16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	a := u & 0x7fffffff
	if a >= 0x7f800000 {
		if a > 0x7f800000 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	if a-0x38800000 < 0x47800000-0x38800000 {
		// Fast path, 2^-14 <= |f| < 2^16: the result is a normal half or
		// (after a carry) infinity. Adding 0xFFF plus the lowest kept bit
		// and truncating rounds to nearest, ties to even.
		return sign | uint16((a+0xfff+(a>>13)&1)>>13-(127-15)<<10)
	}
	c := roundMag(a, 10, 15)
	if c >= 0x7c00 {
		return sign | 0x7c00
	}
	return sign | uint16(c)
}

// BF16ToF32 converts bfloat16 bits to float32 (exact).
func BF16ToF32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// F32ToBF16 converts a float32 to bfloat16 bits exactly as PyTorch's
// c10::BFloat16 (round_to_nearest_even): NaN becomes 0x7FC0 (sign dropped),
// everything else is rounded to nearest, ties to even, with finite values
// that round past the largest bfloat16 becoming ±inf.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return 0x7fc0
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// E4M3ToF32 decodes float8_e4m3fn (safetensors F8_E4M3): 4 exponent bits
// with bias 7, 3 mantissa bits, subnormals, no infinities, NaN = 0x7F/0xFF.
func E4M3ToF32(b uint8) float32 {
	return smallFloatToF32(b, 3, 7, b&0x7f == 0x7f, false)
}

// E5M2ToF32 decodes float8_e5m2 (safetensors F8_E5M2): 5 exponent bits with
// bias 15, 2 mantissa bits, IEEE-like (exponent 31 = inf/NaN).
func E5M2ToF32(b uint8) float32 {
	return smallFloatToF32(b, 2, 15, b&0x7f > 0x7c, b&0x7f == 0x7c)
}

// E4M3FNUZToF32 decodes float8_e4m3fnuz: bias 8, no infinities, no negative
// zero, 0x80 is the only NaN.
func E4M3FNUZToF32(b uint8) float32 {
	if b == 0x80 {
		return float32(math.NaN())
	}
	return smallFloatToF32(b, 3, 8, false, false)
}

// E5M2FNUZToF32 decodes float8_e5m2fnuz: bias 16, no infinities, no negative
// zero, 0x80 is the only NaN.
func E5M2FNUZToF32(b uint8) float32 {
	if b == 0x80 {
		return float32(math.NaN())
	}
	return smallFloatToF32(b, 2, 16, false, false)
}

// E8M0ToF32 decodes float8_e8m0fnu (an unsigned power-of-two scale):
// 2^(b-127), with 0xFF as NaN. 2^-127 is a float32 subnormal and is exact.
func E8M0ToF32(b uint8) float32 {
	if b == 0xff {
		return float32(math.NaN())
	}
	return float32(math.Ldexp(1, int(b)-127))
}

// smallFloatToF32 decodes an 8-bit sign/exponent/mantissa format with the
// given mantissa width and bias; the caller classifies NaN and infinity.
func smallFloatToF32(b uint8, manBits uint, bias int, isNaN, isInf bool) float32 {
	neg := b&0x80 != 0
	var v float32
	switch {
	case isNaN:
		v = float32(math.NaN())
	case isInf:
		v = float32(math.Inf(1))
	default:
		mag := uint32(b & 0x7f)
		exp := int(mag >> manBits)
		man := mag & (1<<manBits - 1)
		if exp == 0 {
			v = float32(math.Ldexp(float64(man), 1-bias-int(manBits)))
		} else {
			v = float32(math.Ldexp(float64(man|1<<manBits), exp-bias-int(manBits)))
		}
	}
	if neg {
		v = -v
	}
	return v
}

// F32ToE4M3 converts a float32 to float8_e4m3fn (safetensors F8_E4M3) with
// round-to-nearest ties-to-even, like PyTorch's fp8e4m3fn_from_fp32_value,
// except that it SATURATES: PyTorch is non-saturating and returns NaN for
// |x| > 464 (values that round above 448) and for ±inf, whereas this function
// returns ±448 (0x7E/0xFE) for them and reports clamped = true. Values with
// 448 < |x| <= 464 round to 448 under ordinary RNE and are not counted as
// clamped. NaN becomes 0x7F with the input's sign (0x7F/0xFF), as in PyTorch.
func F32ToE4M3(f float32) (b uint8, clamped bool) {
	u := math.Float32bits(f)
	sign := uint8(u>>24) & 0x80
	a := u & 0x7fffffff
	if a > 0x7f800000 {
		return sign | 0x7f, false
	}
	if a == 0x7f800000 {
		return sign | 0x7e, true
	}
	var c uint32
	switch {
	case a-0x3c800000 <= 0x43e80000-0x3c800000:
		// Fast path, 2^-6 <= |f| <= 464: normal result, no saturation.
		c = (a+0x7ffff+(a>>20)&1)>>20 - (127-7)<<3
	case a < 0x3c800000:
		// Subnormal results: adding 2^14 (whose ulp is e4m3's subnormal
		// step 2^-9) lets the FPU round to nearest even; the low bits are
		// the code (c10's denorm_mask trick).
		const denorm = 141 << 23
		c = math.Float32bits(math.Float32frombits(a)+math.Float32frombits(denorm)) - denorm
	default:
		c = roundMag(a, 3, 7)
	}
	if c > 0x7e {
		return sign | 0x7e, true
	}
	return sign | uint8(c), false
}

// F32ToE5M2 converts a float32 to float8_e5m2 (safetensors F8_E5M2) with a
// single round-to-nearest ties-to-even step from float32 (not via float16,
// which would round twice). Unlike PyTorch, which returns ±inf for finite
// values that round above 57344 (|x| >= 61440), this function SATURATES them
// to ±57344 (0x7B/0xFB) and reports clamped = true. ±inf stays ±inf
// (0x7C/0xFC, not clamped); NaN becomes 0x7F with the input's sign.
func F32ToE5M2(f float32) (b uint8, clamped bool) {
	u := math.Float32bits(f)
	sign := uint8(u>>24) & 0x80
	a := u & 0x7fffffff
	if a > 0x7f800000 {
		return sign | 0x7f, false
	}
	if a == 0x7f800000 {
		return sign | 0x7c, false
	}
	c := roundMag(a, 2, 15)
	if c > 0x7b {
		return sign | 0x7b, true
	}
	return sign | uint8(c), false
}
