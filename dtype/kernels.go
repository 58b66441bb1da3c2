package dtype

import "math"

// Bulk codecs for the three dtypes merges spend their time on (fp16, bf16,
// float8_e4m3fn). On amd64 with AVX2 and F16C they run SIMD kernels
// (kernels_amd64.s); elsewhere, and for the last len%8 elements, the
// pure-Go loops below. Both give bit-identical codes, counts and rounding
// loss (TestKernels* check every lane against the scalar codec).

// lossAcc holds the partial sums of an encoding's rounding loss: element i
// of the encoded slice adds to lane i%8. The lanes are combined in a fixed
// order by sum, so the result does not depend on the CPU.
type lossAcc [8]float64

// add accumulates (stored − v)² in float64 for finite v.
func (a *lossAcc) add(i int, stored, v float32) {
	if math.Float32bits(v)&0x7fffffff < 0x7f800000 {
		d := float64(stored) - float64(v)
		a[i&7] += float64(d * d) // the conversion forbids fusing into an FMA
	}
}

// sum combines the lanes pairwise.
func (a *lossAcc) sum() float64 {
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

// EncodeLoss is Encode that also returns, measured in the same pass, the
// rounding loss Σ (stored − v)² over the finite inputs v, where stored is
// v's encoding decoded back to float32. Each term is computed in float64
// and the terms are summed in a fixed order (eight partial sums by element
// index mod 8, combined pairwise), so the result is the same on every CPU
// and whichever kernel ran. Finite inputs that overflow to ±inf (F16, BF16,
// E5M2 never: it saturates) make it +Inf. It is 0 for F32 and F64.
func EncodeLoss(d DType, src []float32, dst []byte) (Stats, float64, error) {
	var acc lossAcc
	st, err := encode(d, src, dst, &acc)
	if err != nil {
		return st, 0, err
	}
	return st, acc.sum(), nil
}

// decodeF16 decodes len(dst) little-endian fp16 values.
func decodeF16(src []byte, dst []float32) {
	if haveKernels && len(dst) >= 8 {
		n := len(dst) &^ 7
		decF16AVX(&src[0], &dst[0], n)
		src, dst = src[2*n:], dst[n:]
	}
	decode16(src, dst, &f16Table)
}

// decodeBF16 decodes len(dst) little-endian bf16 values.
func decodeBF16(src []byte, dst []float32) {
	if haveKernels && len(dst) >= 8 {
		n := len(dst) &^ 7
		decBF16AVX(&src[0], &dst[0], n)
		src, dst = src[2*n:], dst[n:]
	}
	decodeBF16Go(src, dst)
}

func decodeBF16Go(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
	}
}

// decodeE4M3 decodes len(dst) float8_e4m3fn values.
func decodeE4M3(src []byte, dst []float32) {
	if haveKernels && len(dst) >= 8 {
		n := len(dst) &^ 7
		decE4M3AVX(&src[0], &dst[0], n, &kconst)
		src, dst = src[n:], dst[n:]
	}
	decode8(src, dst, &e4m3Table)
}

// encodeF16 encodes src as little-endian fp16 into dst, returning the
// number of NaNs; acc, when not nil, accumulates the rounding loss.
func encodeF16(src []float32, dst []byte, acc *lossAcc) (nan int) {
	if haveKernels && len(src) >= 8 {
		n := len(src) &^ 7
		a := acc
		if a == nil {
			a = new(lossAcc)
		}
		nan = encF16AVX(&src[0], &dst[0], n, a, &kconst)
		src, dst = src[n:], dst[2*n:]
	}
	return nan + encodeF16Go(src, dst, acc)
}

func encodeF16Go(src []float32, dst []byte, acc *lossAcc) (nan int) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		u := math.Float32bits(v)
		a := u & 0x7fffffff
		var h uint16
		if a-0x38800000 < 0x47800000-0x38800000 {
			// normal half range: the same rounding as F32ToF16's fast path
			h = uint16(u>>16)&0x8000 | uint16((a+0xfff+(a>>13)&1)>>13-(127-15)<<10)
		} else {
			if a > 0x7f800000 {
				nan++
			}
			h = F32ToF16(v)
		}
		d := dst[2*i : 2*i+2 : 2*i+2]
		d[0] = byte(h)
		d[1] = byte(h >> 8)
		if acc != nil {
			acc.add(i, f16Table[h], v)
		}
	}
	return nan
}

// encodeBF16 encodes src as little-endian bf16 into dst, returning the
// number of NaNs; acc, when not nil, accumulates the rounding loss.
func encodeBF16(src []float32, dst []byte, acc *lossAcc) (nan int) {
	if haveKernels && len(src) >= 8 {
		n := len(src) &^ 7
		a := acc
		if a == nil {
			a = new(lossAcc)
		}
		nan = encBF16AVX(&src[0], &dst[0], n, a, &kconst)
		src, dst = src[n:], dst[2*n:]
	}
	return nan + encodeBF16Go(src, dst, acc)
}

func encodeBF16Go(src []float32, dst []byte, acc *lossAcc) (nan int) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		u := math.Float32bits(v)
		var h uint16
		if u&0x7fffffff > 0x7f800000 {
			nan++
			h = 0x7fc0
		} else {
			h = uint16((u + 0x7fff + (u>>16)&1) >> 16)
		}
		dst[2*i] = byte(h)
		dst[2*i+1] = byte(h >> 8)
		if acc != nil {
			acc.add(i, math.Float32frombits(uint32(h)<<16), v)
		}
	}
	return nan
}

// encodeE4M3 encodes src as float8_e4m3fn (saturating, see F32ToE4M3)
// into dst, returning the numbers of NaNs and of clamped values; acc, when
// not nil, accumulates the rounding loss.
func encodeE4M3(src []float32, dst []byte, acc *lossAcc) (nan, clamped int) {
	if haveKernels && len(src) >= 8 {
		n := len(src) &^ 7
		a := acc
		if a == nil {
			a = new(lossAcc)
		}
		nan, clamped = encE4M3AVX(&src[0], &dst[0], n, a, &kconst)
		src, dst = src[n:], dst[n:]
	}
	tn, tc := encodeE4M3Go(src, dst, acc)
	return nan + tn, clamped + tc
}

func encodeE4M3Go(src []float32, dst []byte, acc *lossAcc) (nan, clamped int) {
	dst = dst[:len(src)]
	const denorm = 141 << 23
	denormF := math.Float32frombits(denorm)
	for i, v := range src {
		u := math.Float32bits(v)
		a := u & 0x7fffffff
		var b uint8
		if a <= 0x43e80000 {
			// |v| <= 464: F32ToE4M3's two exact paths, computed both
			// and selected without a branch (random signs and
			// magnitudes would defeat the branch predictor)
			n := (a+0x7ffff+(a>>20)&1)>>20 - (127-7)<<3
			sub := math.Float32bits(math.Float32frombits(a)+denormF) - denorm
			if a < 0x3c800000 {
				n = sub
			}
			b = uint8(u>>24)&0x80 | uint8(n)
		} else {
			if v != v {
				nan++
			}
			var c bool
			b, c = F32ToE4M3(v)
			if c {
				clamped++
			}
		}
		dst[i] = b
		if acc != nil {
			acc.add(i, e4m3Table[b], v)
		}
	}
	return nan, clamped
}

// encodeE5M2Go encodes src as float8_e5m2 (saturating, see F32ToE5M2).
func encodeE5M2Go(src []float32, dst []byte, acc *lossAcc) (nan, clamped int) {
	dst = dst[:len(src)]
	for i, v := range src {
		if v != v {
			nan++
		}
		b, c := F32ToE5M2(v)
		if c {
			clamped++
		}
		dst[i] = b
		if acc != nil {
			acc.add(i, e5m2Table[b], v)
		}
	}
	return nan, clamped
}

// kconst holds the kernels' constants, each broadcast to eight lanes.
var kconst = [kconstN][8]uint32{
	kAbs:      bcast(0x7fffffff),
	kInf32:    bcast(0x7f800000),
	kF16Abs:   bcast(0x7fff),
	kF16Inf:   bcast(0x7c00),
	kQuiet:    bcast(0x00400000),
	kNaNFix:   bcast(0x01ff01ff),
	kOne:      bcast(1),
	kBF16Rnd:  bcast(0x7fff),
	kBF16NaN:  bcast(0x7fc0),
	kE4Lim:    bcast(0x43e80000),
	kE4Sub:    bcast(0x3c800000),
	kE4Rnd:    bcast(0x7ffff),
	kE4Bias:   bcast((127 - 7) << 3),
	kE4Denorm: bcast(141 << 23),
	kE4Exp:    bcast((127 - 7) << 23),
	kE4Max:    bcast(0x7e),
	kE4MaxF:   bcast(0x43e00000),
	kE4Mag:    bcast(0x7f),
	kE4Eight:  bcast(8),
	kE4Scale:  bcast(0x3b000000), // 2^-9
	kE4NaN:    bcast(0x7fc00000),
}

// Indices into kconst (the assembly uses index·32 as byte offsets).
const (
	kAbs = iota
	kInf32
	kF16Abs
	kF16Inf
	kQuiet
	kNaNFix
	kOne
	kBF16Rnd
	kBF16NaN
	kE4Lim
	kE4Sub
	kE4Rnd
	kE4Bias
	kE4Denorm
	kE4Exp
	kE4Max
	kE4MaxF
	kE4Mag
	kE4Eight
	kE4Scale
	kE4NaN
	kconstN
)

func bcast(x uint32) [8]uint32 { return [8]uint32{x, x, x, x, x, x, x, x} }
