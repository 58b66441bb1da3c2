package dtype

import (
	"math/rand/v2"
	"testing"
)

const benchN = 1 << 20

func benchValues() []float32 {
	r := rand.New(rand.NewPCG(5, 6))
	v := make([]float32, benchN)
	for i := range v {
		v[i] = float32(r.NormFloat64() * 0.05)
	}
	return v
}

func benchDecode(b *testing.B, d DType) {
	src := make([]byte, benchN*d.BitSize()/8)
	if _, err := Encode(d, benchValues(), src); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, benchN)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		if err := Decode(d, src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncode(b *testing.B, d DType) {
	src := benchValues()
	dst := make([]byte, benchN*d.BitSize()/8)
	b.SetBytes(int64(4 * benchN))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Encode(d, src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeF16(b *testing.B)  { benchDecode(b, F16) }
func BenchmarkDecodeBF16(b *testing.B) { benchDecode(b, BF16) }
func BenchmarkDecodeE4M3(b *testing.B) { benchDecode(b, F8E4M3) }
func BenchmarkEncodeF16(b *testing.B)  { benchEncode(b, F16) }
func BenchmarkEncodeBF16(b *testing.B) { benchEncode(b, BF16) }
func BenchmarkEncodeE4M3(b *testing.B) { benchEncode(b, F8E4M3) }

// The pure-Go paths (the fallback on CPUs without AVX2/F16C, and the code
// the kernels replaced), for comparison with the benchmarks above.

func benchDecodeGo(b *testing.B, d DType, f func([]byte, []float32)) {
	src := make([]byte, benchN*d.BitSize()/8)
	if _, err := Encode(d, benchValues(), src); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, benchN)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		f(src, dst)
	}
}

func benchEncodeGo(b *testing.B, d DType, f func([]float32, []byte, *lossAcc)) {
	src := benchValues()
	dst := make([]byte, benchN*d.BitSize()/8)
	b.SetBytes(int64(4 * benchN))
	b.ResetTimer()
	for b.Loop() {
		f(src, dst, nil)
	}
}

func BenchmarkDecodeF16Go(b *testing.B) {
	benchDecodeGo(b, F16, func(s []byte, d []float32) { decode16(s, d, &f16Table) })
}
func BenchmarkDecodeBF16Go(b *testing.B) { benchDecodeGo(b, BF16, decodeBF16Go) }
func BenchmarkDecodeE4M3Go(b *testing.B) {
	benchDecodeGo(b, F8E4M3, func(s []byte, d []float32) { decode8(s, d, &e4m3Table) })
}
func BenchmarkEncodeF16Go(b *testing.B) {
	benchEncodeGo(b, F16, func(s []float32, d []byte, a *lossAcc) { encodeF16Go(s, d, a) })
}
func BenchmarkEncodeBF16Go(b *testing.B) {
	benchEncodeGo(b, BF16, func(s []float32, d []byte, a *lossAcc) { encodeBF16Go(s, d, a) })
}
func BenchmarkEncodeE4M3Go(b *testing.B) {
	benchEncodeGo(b, F8E4M3, func(s []float32, d []byte, a *lossAcc) { encodeE4M3Go(s, d, a) })
}

// BenchmarkEncodeLossF16 encodes and measures the rounding loss in one
// pass; BenchmarkEncodeThenLossF16 does it the two-pass way (encode, then
// decode the output and compare), as callers had to before EncodeLoss.
func BenchmarkEncodeLossF16(b *testing.B) {
	src := benchValues()
	dst := make([]byte, 2*benchN)
	b.SetBytes(int64(4 * benchN))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := EncodeLoss(F16, src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeThenLossF16(b *testing.B) {
	src := benchValues()
	dst := make([]byte, 2*benchN)
	back := make([]float32, benchN)
	b.SetBytes(int64(4 * benchN))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Encode(F16, src, dst); err != nil {
			b.Fatal(err)
		}
		if err := Decode(F16, dst, back); err != nil {
			b.Fatal(err)
		}
		var lost float64
		for i, v := range src {
			d := float64(back[i]) - float64(v)
			lost += d * d
		}
		_ = lost
	}
}
