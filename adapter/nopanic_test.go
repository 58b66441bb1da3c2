package adapter

import (
	"math/rand/v2"
	"testing"
)

// TestNoPanicRandomShapes feeds every algorithm random small (often
// inconsistent) shapes, including zero-size dims, malformed data lengths
// and odd alphas: Apply, Delta, Scale and Rank must return, never panic.
func TestNoPanicRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	roles := map[Algo][]string{
		LoRA:  {RoleUp, RoleDown, RoleMid, RoleDoRAScale, RoleReshapeWeight},
		LoHa:  {RoleHadaW1A, RoleHadaW1B, RoleHadaW2A, RoleHadaW2B, RoleHadaT1, RoleHadaT2, RoleDoRAScale},
		LoKr:  {RoleLoKrW1, RoleLoKrW1A, RoleLoKrW1B, RoleLoKrW2, RoleLoKrW2A, RoleLoKrW2B, RoleLoKrT2, RoleDoRAScale},
		GLoRA: {RoleA1, RoleA2, RoleB1, RoleB2, RoleDoRAScale},
		OFT:   {RoleOFTBlocks, RoleRescale, RoleDoRAScale},
		BOFT:  {RoleOFTBlocks, RoleRescale, RoleDoRAScale},
		IA3:   {RoleIA3Weight, RoleOnInput},
		Diff:  {RoleDiff},
		Norm:  {RoleDiff},
		Set:   {RoleSetWeight},
	}
	shape := func() []int {
		// Mostly 2s so that many modules are consistent enough to reach
		// the arithmetic, plus 0s, 1s and 4s for the edge cases.
		dims := []int{0, 1, 2, 2, 2, 2, 4}
		s := make([]int, rng.IntN(5))
		for i := range s {
			s[i] = dims[rng.IntN(len(dims))]
		}
		return s
	}
	tensor := func() *Tensor {
		switch rng.IntN(12) {
		case 0:
			return nil
		case 1:
			return &Tensor{Shape: shape(), Data: make([]float32, rng.IntN(4))}
		}
		tt := New(shape()...)
		for i := range tt.Data {
			tt.Data[i] = float32(rng.NormFloat64())
		}
		return tt
	}
	algos := []Algo{LoRA, LoHa, LoKr, GLoRA, OFT, BOFT, IA3, Diff, Norm, Set, "bogus"}
	applied := 0
	for iter := 0; iter < 40000; iter++ {
		a := algos[rng.IntN(len(algos))]
		m := &Module{Algo: a, Tensors: map[string]*Tensor{}}
		for _, r := range roles[a] {
			if rng.IntN(4) != 0 {
				m.Tensors[r] = tensor()
			}
		}
		if rng.IntN(2) == 0 {
			al := float32(rng.IntN(5)) - 1
			m.Alpha = &al
		}
		w := tensor()
		opt := DefaultOptions(float32(rng.IntN(3)) * 0.5)
		opt.DoRAComfyQuirk = rng.IntN(2) == 0
		opt.OFTStrengthSquared = rng.IntN(2) == 0
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("iter %d: panic %v\nalgo %s w %+v module %+v", iter, p, a, w, m.Tensors)
				}
			}()
			if _, err := Apply(w, m, opt); err == nil {
				applied++
			}
			if w != nil {
				_, _ = Delta(m, w.Shape)
			}
			_, _ = Scale(m)
			_ = Rank(m)
		}()
	}
	t.Logf("%d of 40000 random modules applied without error", applied)
}
