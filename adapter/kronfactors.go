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
