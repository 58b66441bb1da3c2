package adapter

import (
	"math/rand/v2"
	"testing"
)

func randTensor(rng *rand.Rand, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

func benchLoRA(b *testing.B, n, r int) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := randTensor(rng, n, n)
	alpha := float32(r)
	m := &Module{Algo: LoRA, Alpha: &alpha, Tensors: map[string]*Tensor{
		RoleUp: randTensor(rng, n, r), RoleDown: randTensor(rng, r, n),
	}}
	opt := DefaultOptions(0.001)
	b.SetBytes(int64(4 * n * n))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Apply(w, m, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyLoRA1280r32 merges a rank-32 LoRA into a 1280×1280 weight.
func BenchmarkApplyLoRA1280r32(b *testing.B) { benchLoRA(b, 1280, 32) }

// BenchmarkApplyLoRA3072r16 merges a rank-16 LoRA into a 3072×3072 weight.
func BenchmarkApplyLoRA3072r16(b *testing.B) { benchLoRA(b, 3072, 16) }
