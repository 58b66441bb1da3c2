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
