package gguf

import "testing"

func benchQuant(b *testing.B, t Type) {
	x := goldenInputs(256)
	n, _ := t.RowSize(int64(len(x)))
	dst := make([]byte, n)
	b.SetBytes(int64(len(x)) * 4)
	for i := 0; i < b.N; i++ {
		Quantize(t, x, dst)
	}
}

func BenchmarkQuantizeQ8_0(b *testing.B) { benchQuant(b, Q8_0) }
func BenchmarkQuantizeQ4_K(b *testing.B) { benchQuant(b, Q4_K) }
func BenchmarkQuantizeQ6_K(b *testing.B) { benchQuant(b, Q6_K) }

func BenchmarkDequantizeQ4_K(b *testing.B) {
	x := goldenInputs(256)
	n, _ := Q4_K.RowSize(int64(len(x)))
	q := make([]byte, n)
	Quantize(Q4_K, x, q)
	b.SetBytes(int64(len(x)) * 4)
	for i := 0; i < b.N; i++ {
		Dequantize(Q4_K, q, x)
	}
}
