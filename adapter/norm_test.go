package adapter

import (
	"math"
	"math/rand"
	"testing"
)

func randT(rng *rand.Rand, shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	t := &Tensor{Shape: shape, Data: make([]float32, n)}
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

func alphaT(a float32) *Tensor { return &Tensor{Shape: []int{}, Data: []float32{a}} }

// mm64 is a float64 product of row-major a (n×k) and b (k×m).
func mm64(a []float32, n, k int, b []float32, m int) []float64 {
	c := make([]float64, n*m)
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(a[i*k+l]) * float64(b[l*m+j])
			}
			c[i*m+j] = s
		}
	}
	return c
}

func norm2(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return s
}

// tucker64 is out[p,r,k,l] = Σ_i Σ_j t[i,j,k,l]·wb[j,r]·wa[i,p] in float64.
func tucker64(t, wb, wa *Tensor) []float64 {
	I, J, K, L := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	R, P := wb.Shape[1], wa.Shape[1]
	out := make([]float64, P*R*K*L)
	for p := 0; p < P; p++ {
		for r := 0; r < R; r++ {
			for kl := 0; kl < K*L; kl++ {
				var s float64
				for i := 0; i < I; i++ {
					for j := 0; j < J; j++ {
						s += float64(t.Data[(i*J+j)*K*L+kl]) * float64(wb.Data[j*R+r]) * float64(wa.Data[i*P+p])
					}
				}
				out[(p*R+r)*K*L+kl] = s
			}
		}
	}
	return out
}

// TestDeltaNorm2 checks the closed forms against dense float64
// recomputations of each algorithm's delta from its factors.
func TestDeltaNorm2(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	type tc struct {
		name  string
		m     *Module
		shape []int
		want  float64
	}
	var cases []tc
	{ // LoRA with alpha
		up, down := randT(rng, 24, 4), randT(rng, 4, 40)
		d := mm64(up.Data, 24, 4, down.Data, 40)
		cases = append(cases, tc{"lora", &Module{Algo: LoRA, Tensors: map[string]*Tensor{RoleUp: up, RoleDown: down, RoleAlpha: alphaT(2)}}, []int{24, 40}, norm2(d) * 0.25})
	}
	{ // LoCon Tucker: W[o,i,h,w] = Σ_p up[o,p] Σ_q mid[p,q,h,w] down[q,i]
		up, mid, down := randT(rng, 6, 3, 1, 1), randT(rng, 3, 3, 3, 3), randT(rng, 3, 5, 1, 1)
		w := make([]float64, 6*5*9)
		for o := 0; o < 6; o++ {
			for i := 0; i < 5; i++ {
				for hw := 0; hw < 9; hw++ {
					var s float64
					for p := 0; p < 3; p++ {
						for q := 0; q < 3; q++ {
							s += float64(up.Data[o*3+p]) * float64(mid.Data[(p*3+q)*9+hw]) * float64(down.Data[q*5+i])
						}
					}
					w[(o*5+i)*9+hw] = s
				}
			}
		}
		cases = append(cases, tc{"locon-tucker", &Module{Algo: LoRA, Tensors: map[string]*Tensor{RoleUp: up, RoleMid: mid, RoleDown: down}}, []int{6, 5, 3, 3}, norm2(w)})
	}
	for _, r := range []struct{ r1, r2, rows, cols int }{{2, 3, 30, 20}, {2, 2, 200, 150}, {16, 16, 12, 10}} {
		// LoHa: small ranks take the Gram path, large ones the streamed rows
		a1, b1 := randT(rng, r.rows, r.r1), randT(rng, r.r1, r.cols)
		a2, b2 := randT(rng, r.rows, r.r2), randT(rng, r.r2, r.cols)
		x, y := mm64(a1.Data, r.rows, r.r1, b1.Data, r.cols), mm64(a2.Data, r.rows, r.r2, b2.Data, r.cols)
		for i := range x {
			x[i] *= y[i]
		}
		sc := 4.0 / float64(r.r1)
		cases = append(cases, tc{"loha", &Module{Algo: LoHa, Tensors: map[string]*Tensor{RoleHadaW1A: a1, RoleHadaW1B: b1, RoleHadaW2A: a2, RoleHadaW2B: b2, RoleAlpha: alphaT(4)}}, []int{r.rows, r.cols}, norm2(x) * sc * sc})
	}
	kron64 := func(a []float64, ar, ac int, b []float64, br, bc int) []float64 {
		out := make([]float64, ar*br*ac*bc)
		for i := 0; i < ar; i++ {
			for j := 0; j < ac; j++ {
				for k := 0; k < br; k++ {
					for l := 0; l < bc; l++ {
						out[(i*br+k)*(ac*bc)+j*bc+l] = a[i*ac+j] * b[k*bc+l]
					}
				}
			}
		}
		return out
	}
	{ // LoKr: full w1, decomposed w2, alpha/dim
		w1 := randT(rng, 4, 2)
		w2a, w2b := randT(rng, 6, 3), randT(rng, 3, 10)
		w1d := make([]float64, 8)
		for i, v := range w1.Data {
			w1d[i] = float64(v)
		}
		d := kron64(w1d, 4, 2, mm64(w2a.Data, 6, 3, w2b.Data, 10), 6, 10)
		sc := 6.0 / 3
		cases = append(cases, tc{"lokr", &Module{Algo: LoKr, Tensors: map[string]*Tensor{RoleLoKrW1: w1, RoleLoKrW2A: w2a, RoleLoKrW2B: w2b, RoleAlpha: alphaT(6)}}, []int{24, 20}, norm2(d) * sc * sc})
	}
	{ // LoKr: both decomposed
		w1a, w1b := randT(rng, 3, 2), randT(rng, 2, 4)
		w2a, w2b := randT(rng, 5, 2), randT(rng, 2, 7)
		d := kron64(mm64(w1a.Data, 3, 2, w1b.Data, 4), 3, 4, mm64(w2a.Data, 5, 2, w2b.Data, 7), 5, 7)
		cases = append(cases, tc{"lokr-both", &Module{Algo: LoKr, Tensors: map[string]*Tensor{RoleLoKrW1A: w1a, RoleLoKrW1B: w1b, RoleLoKrW2A: w2a, RoleLoKrW2B: w2b}}, []int{15, 28}, norm2(d)})
	}
	{ // LoKr: Tucker second factor (conv)
		w1 := randT(rng, 2, 2)
		t2, w2a, w2b := randT(rng, 2, 2, 3, 3), randT(rng, 2, 4), randT(rng, 2, 3)
		w2 := tucker64(t2, w2b, w2a) // [4,3,3,3]
		var n1 float64
		for _, v := range w1.Data {
			n1 += float64(v) * float64(v)
		}
		cases = append(cases, tc{"lokr-tucker", &Module{Algo: LoKr, Tensors: map[string]*Tensor{RoleLoKrW1: w1, RoleLoKrW2A: w2a, RoleLoKrW2B: w2b, RoleLoKrT2: t2}}, []int{8, 6, 3, 3}, n1 * norm2(w2)})
	}
	{ // LoHa Tucker
		t1, a1, b1 := randT(rng, 2, 2, 3, 3), randT(rng, 2, 4), randT(rng, 2, 5)
		t2, a2, b2 := randT(rng, 2, 2, 3, 3), randT(rng, 2, 4), randT(rng, 2, 5)
		x, y := tucker64(t1, b1, a1), tucker64(t2, b2, a2)
		for i := range x {
			x[i] *= y[i]
		}
		cases = append(cases, tc{"loha-tucker", &Module{Algo: LoHa, Tensors: map[string]*Tensor{RoleHadaW1A: a1, RoleHadaW1B: b1, RoleHadaW2A: a2, RoleHadaW2B: b2, RoleHadaT1: t1, RoleHadaT2: t2}}, []int{4, 5, 3, 3}, norm2(x)})
	}
	{
		d := randT(rng, 7, 3)
		var w float64
		for _, v := range d.Data {
			w += float64(v) * float64(v)
		}
		cases = append(cases, tc{"diff", &Module{Algo: Diff, Tensors: map[string]*Tensor{RoleDiff: d}}, []int{7, 3}, w})
	}
	for _, c := range cases {
		got, err := DeltaNorm2(c.m, c.shape)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if math.Abs(got-c.want) > 1e-5*c.want {
			t.Errorf("%s: DeltaNorm2 = %.9g, float64 dense = %.9g", c.name, got, c.want)
		}
	}
	if _, err := DeltaNorm2(&Module{Algo: OFT, Tensors: map[string]*Tensor{}}, []int{2, 2}); err == nil {
		t.Error("OFT: no error")
	}
}

// TestLoHaPathsAgree: both LoHa evaluations give the same norm.
func TestLoHaPathsAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, r := range []struct{ r1, r2, rows, cols int }{{1, 1, 5, 7}, {3, 2, 40, 9}, {4, 4, 33, 65}} {
		a1, b1 := randT(rng, r.rows, r.r1), randT(rng, r.r1, r.cols)
		a2, b2 := randT(rng, r.rows, r.r2), randT(rng, r.r2, r.cols)
		g := lohaGram(a1.Data, b1.Data, a2.Data, b2.Data, r.rows, r.cols, r.r1, r.r2)
		s := lohaStream(a1.Data, b1.Data, a2.Data, b2.Data, r.rows, r.cols, r.r1, r.r2)
		if math.Abs(g-s) > 1e-5*s {
			t.Errorf("%v: Gram %.9g, streamed %.9g", r, g, s)
		}
	}
}
