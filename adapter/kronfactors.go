package adapter

import "fmt"

// LoKrFactors returns a LoKr module's two full Kronecker factors as
// matrices (w1 [a, c]; w2 [b, d·kh·kw], a conv kernel flattened into the
// columns) with ΔW = kron(w1, w2)·Scale(m) in the flattened [out, in·kh·kw]
// layout. Tucker factors (lokr_t2) are rebuilt first.
func LoKrFactors(m *Module) (w1, w2 *Tensor, err error) {
	if m == nil || m.Algo != LoKr {
		return nil, nil, fmt.Errorf("adapter: not a LoKr module")
	}
	if w1, err = lokrFactor(m, RoleLoKrW1, RoleLoKrW1A, RoleLoKrW1B, ""); err != nil {
		return nil, nil, err
	}
	if w2, err = lokrFactor(m, RoleLoKrW2, RoleLoKrW2A, RoleLoKrW2B, RoleLoKrT2); err != nil {
		return nil, nil, err
	}
	flat := func(t *Tensor) (*Tensor, error) {
		if len(t.Shape) < 2 {
			return nil, fmt.Errorf("adapter: lokr factor of shape %v", t.Shape)
		}
		cols := 1
		for _, d := range t.Shape[1:] {
			cols *= d
		}
		return &Tensor{Shape: []int{t.Shape[0], cols}, Data: t.Data}, nil
	}
	if w1, err = flat(w1); err != nil {
		return nil, nil, err
	}
	if w2, err = flat(w2); err != nil {
		return nil, nil, err
	}
	return w1, w2, nil
}

// LoHaFactors returns a LoHa module's delta (unscaled) as one pair of
// low-rank factors: (w1a·w1b) ⊙ (w2a·w2b) = U·D with U = w1a ⊙ᵣ w2a (the
// row-wise Kronecker product, rows × r1·r2) and D = w1b ⊙ᶜ w2b (the
// column-wise one, r1·r2 × cols), exactly: Σ_p Σ_q w1a[i,p]w2a[i,q] ·
// w1b[p,j]w2b[q,j]. Conv kernels are flattened into the columns. ok is
// false for Tucker LoHa (hada_t1/hada_t2), whose factors are not matrices.
func LoHaFactors(m *Module) (up, down *Tensor, ok bool, err error) {
	if m == nil || m.Algo != LoHa || m.has(RoleHadaT1) || m.has("hada_t2") {
		return nil, nil, false, nil
	}
	get := func(role string) (*Tensor, int, int, error) {
		t, err := m.tensor(role)
		if err != nil {
			return nil, 0, 0, err
		}
		if len(t.Shape) < 2 {
			return nil, 0, 0, fmt.Errorf("adapter: loha: %s of shape %v", role, t.Shape)
		}
		cols := 1
		for _, d := range t.Shape[1:] {
			cols *= d
		}
		return t, t.Shape[0], cols, nil
	}
	a1, rows, r1, err := get(RoleHadaW1A)
	if err != nil {
		return nil, nil, false, err
	}
	a2, rows2, r2, err := get(RoleHadaW2A)
	if err != nil {
		return nil, nil, false, err
	}
	b1, br1, cols, err := get(RoleHadaW1B)
	if err != nil {
		return nil, nil, false, err
	}
	b2, br2, cols2, err := get(RoleHadaW2B)
	if err != nil {
		return nil, nil, false, err
	}
	if rows != rows2 || cols != cols2 || br1 != r1 || br2 != r2 {
		return nil, nil, false, fmt.Errorf("adapter: loha: factors %v %v %v %v do not fit", a1.Shape, b1.Shape, a2.Shape, b2.Shape)
	}
	r := r1 * r2
	u := make([]float32, rows*r)
	for i := 0; i < rows; i++ {
		for p := 0; p < r1; p++ {
			x := a1.Data[i*r1+p]
			for q := 0; q < r2; q++ {
				u[i*r+p*r2+q] = x * a2.Data[i*r2+q]
			}
		}
	}
	d := make([]float32, r*cols)
	for p := 0; p < r1; p++ {
		for q := 0; q < r2; q++ {
			row := d[(p*r2+q)*cols : (p*r2+q+1)*cols]
			for j := range row {
				row[j] = b1.Data[p*cols+j] * b2.Data[q*cols+j]
			}
		}
	}
	return &Tensor{Shape: []int{rows, r}, Data: u}, &Tensor{Shape: []int{r, cols}, Data: d}, true, nil
}
