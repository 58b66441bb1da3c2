package adapter

import (
	"math"
	"math/rand"
	"testing"
)

// TestLoHaFactors checks U·D against the Hadamard product of the two
// low-rank products, computed in float64.
func TestLoHaFactors(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	rows, cols, r1, r2 := 7, 9, 3, 2
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	m := &Module{Algo: LoHa, Tensors: map[string]*Tensor{
		RoleHadaW1A: {Shape: []int{rows, r1}, Data: rnd(rows * r1)},
		RoleHadaW1B: {Shape: []int{r1, cols}, Data: rnd(r1 * cols)},
		RoleHadaW2A: {Shape: []int{rows, r2}, Data: rnd(rows * r2)},
		RoleHadaW2B: {Shape: []int{r2, cols}, Data: rnd(r2 * cols)},
	}}
	up, down, ok, err := LoHaFactors(m)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	T := m.Tensors
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			var p1, p2, got float64
			for p := 0; p < r1; p++ {
				p1 += float64(T[RoleHadaW1A].Data[i*r1+p]) * float64(T[RoleHadaW1B].Data[p*cols+j])
			}
			for q := 0; q < r2; q++ {
				p2 += float64(T[RoleHadaW2A].Data[i*r2+q]) * float64(T[RoleHadaW2B].Data[q*cols+j])
			}
			for k := 0; k < r1*r2; k++ {
				got += float64(up.Data[i*r1*r2+k]) * float64(down.Data[k*cols+j])
			}
			if want := p1 * p2; math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("(%d,%d): %g, want %g", i, j, got, want)
			}
		}
	}
}
