package adapter

import "fmt"

// tuckerRebuild computes einsum('i j k l, j r, i p -> p r k l', t, wb, wa):
// out[p,r,k,l] = Σ_i Σ_j t[i,j,k,l]·wb[j,r]·wa[i,p], the LyCORIS Tucker/CP
// reconstruction used by LoHa (hada_t1/t2) and LoKr (lokr_t2).
func tuckerRebuild(t, wb, wa *Tensor, name string) (*Tensor, error) {
	if len(t.Shape) != 4 {
		return nil, fmt.Errorf("adapter: %s: Tucker core must be 4-D, have %v", name, t.Shape)
	}
	jb, rr, err := mat2(wb, name+" b factor")
	if err != nil {
		return nil, err
	}
	ia, pp, err := mat2(wa, name+" a factor")
	if err != nil {
		return nil, err
	}
	ti, tj, kh, kw := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	if tj != jb || ti != ia {
		return nil, fmt.Errorf("adapter: %s: shape mismatch: core %v, b %v, a %v", name, t.Shape, wb.Shape, wa.Shape)
	}
	s := kh * kw
	// tmp[i] [r × s] = wbᵀ [r×j] @ t[i] [j × s]
	tmp := make([]float32, ti*rr*s)
	for i := 0; i < ti; i++ {
		gemm(true, false, rr, s, tj, wb.Data, rr, t.Data[i*tj*s:], s, tmp[i*rr*s:], s)
	}
	// out [p × r·s] = waᵀ [p×i] @ tmp [i × r·s]
	out := &Tensor{Shape: []int{pp, rr, kh, kw}, Data: make([]float32, pp*rr*s)}
	gemm(true, false, pp, rr*s, ti, wa.Data, pp, tmp, rr*s, out.Data, rr*s)
	return out, nil
}

// mm returns the 2-D product a@b of two 2-D tensors (torch.mm).
func mm(a, b *Tensor, name string) (*Tensor, error) {
	ar, ac, err := mat2(a, name)
	if err != nil {
		return nil, err
	}
	br, bc, err := mat2(b, name)
	if err != nil {
		return nil, err
	}
	if ac != br {
		return nil, fmt.Errorf("adapter: %s: shape mismatch: %v @ %v", name, a.Shape, b.Shape)
	}
	return &Tensor{Shape: []int{ar, bc}, Data: matmul(a.Data, ar, ac, b.Data, bc)}, nil
}

// lohaDelta returns (w1a@w1b) ⊙ (w2a@w2b), or the Tucker form with
// hada_t1/hada_t2, unscaled and in row-major order.
func lohaDelta(m *Module) ([]float32, error) {
	var t [6]*Tensor
	for i, role := range []string{RoleHadaW1A, RoleHadaW1B, RoleHadaW2A, RoleHadaW2B} {
		x, err := m.tensor(role)
		if err != nil {
			return nil, err
		}
		t[i] = x
	}
	t1, err := m.optTensor(RoleHadaT1)
	if err != nil {
		return nil, err
	}
	var m1, m2 *Tensor
	if t1 != nil {
		t2, err := m.tensor(RoleHadaT2)
		if err != nil {
			return nil, err
		}
		if m1, err = tuckerRebuild(t1, t[1], t[0], "loha t1"); err != nil {
			return nil, err
		}
		if m2, err = tuckerRebuild(t2, t[3], t[2], "loha t2"); err != nil {
			return nil, err
		}
	} else {
		if m1, err = mm(t[0], t[1], "loha w1a@w1b"); err != nil {
			return nil, err
		}
		if m2, err = mm(t[2], t[3], "loha w2a@w2b"); err != nil {
			return nil, err
		}
	}
	if !sameShape(m1.Shape, m2.Shape) {
		return nil, fmt.Errorf("adapter: loha: shape mismatch: %v ⊙ %v", m1.Shape, m2.Shape)
	}
	for i := range m1.Data {
		m1.Data[i] *= m2.Data[i]
	}
	return m1.Data, nil
}

// lokrDim returns ComfyUI's LoKr "dim": lokr_w1_b.shape[0] if w1 is
// decomposed, overwritten by lokr_w2_b.shape[0] if w2 is decomposed; ok is
// false when both factors are full.
func lokrDim(m *Module) (dim int, ok bool, err error) {
	if !m.has(RoleLoKrW1) {
		b, err := m.tensor(RoleLoKrW1B)
		if err != nil {
			return 0, false, err
		}
		if len(b.Shape) == 0 {
			return 0, false, fmt.Errorf("adapter: lokr: lokr_w1_b is a scalar")
		}
		dim, ok = b.Shape[0], true
	}
	if !m.has(RoleLoKrW2) {
		b, err := m.tensor(RoleLoKrW2B)
		if err != nil {
			return 0, false, err
		}
		if len(b.Shape) == 0 {
			return 0, false, fmt.Errorf("adapter: lokr: lokr_w2_b is a scalar")
		}
		dim, ok = b.Shape[0], true
	}
	return dim, ok, nil
}

// lokrFactor returns the full factor: role, or a@b, or (for w2) the Tucker
// rebuild with lokr_t2.
func lokrFactor(m *Module, full, a, b, t string) (*Tensor, error) {
	if m.has(full) {
		return m.tensor(full)
	}
	ta, err := m.tensor(a)
	if err != nil {
		return nil, err
	}
	tb, err := m.tensor(b)
	if err != nil {
		return nil, err
	}
	if t != "" {
		tt, err := m.optTensor(t)
		if err != nil {
			return nil, err
		}
		if tt != nil {
			return tuckerRebuild(tt, tb, ta, "lokr t2")
		}
	}
	return mm(ta, tb, "lokr "+a+"@"+b)
}

// lokrDelta returns kron(w1, w2) (w1 unsqueezed to [a,b,1,1] when w2 is
// 4-D), unscaled and in row-major order.
func lokrDelta(m *Module) ([]float32, error) {
	w1, err := lokrFactor(m, RoleLoKrW1, RoleLoKrW1A, RoleLoKrW1B, "")
	if err != nil {
		return nil, err
	}
	w2, err := lokrFactor(m, RoleLoKrW2, RoleLoKrW2A, RoleLoKrW2B, RoleLoKrT2)
	if err != nil {
		return nil, err
	}
	if len(w2.Shape) == 4 {
		w1 = &Tensor{Shape: append(append([]int(nil), w1.Shape...), 1, 1), Data: w1.Data}
	}
	return kron(w1, w2).Data, nil
}

// kron is torch.kron: the operand with fewer dims gets leading 1s, the
// result has shape a.shape[d]·b.shape[d] and
// out[i·B + j] = a[i]·b[j] in every dimension.
func kron(a, b *Tensor) *Tensor {
	nd := max(len(a.Shape), len(b.Shape))
	pad := func(s []int) []int {
		out := make([]int, nd)
		for i := range out {
			out[i] = 1
		}
		copy(out[nd-len(s):], s)
		return out
	}
	as, bs := pad(a.Shape), pad(b.Shape)
	os := make([]int, nd)
	for d := range os {
		os[d] = as[d] * bs[d]
	}
	n, _ := shapeNumel(os)
	out := &Tensor{Shape: os, Data: make([]float32, n)}
	if n == 0 {
		return out
	}
	// Output strides.
	ost := make([]int, nd)
	st := 1
	for d := nd - 1; d >= 0; d-- {
		ost[d] = st
		st *= os[d]
	}
	ai := make([]int, nd)
	for ia := 0; ia < len(a.Data); ia++ {
		av := a.Data[ia]
		// Base offset of the b-sized block for this a element.
		base := 0
		for d := 0; d < nd; d++ {
			base += ai[d] * bs[d] * ost[d]
		}
		bi := make([]int, nd)
		for ib := 0; ib < len(b.Data); ib++ {
			off := base
			for d := 0; d < nd; d++ {
				off += bi[d] * ost[d]
			}
			out.Data[off] = av * b.Data[ib]
			for d := nd - 1; d >= 0; d-- {
				bi[d]++
				if bi[d] < bs[d] {
					break
				}
				bi[d] = 0
			}
		}
		for d := nd - 1; d >= 0; d-- {
			ai[d]++
			if ai[d] < as[d] {
				break
			}
			ai[d] = 0
		}
	}
	return out
}
