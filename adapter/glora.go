package adapter

import "fmt"

// gloraInfo is the result of ComfyUI's GLoRA format detection.
type gloraInfo struct {
	a1, a2, b1, b2 *Tensor
	old            bool
	rank           int
	rankKnown      bool
}

// gloraFormat runs ComfyUI's detection on the raw (unflattened) shapes:
// "old" if b2.shape[1] == b1.shape[0] == a1.shape[0] == a2.shape[1]
// (rank a1.shape[0]); switched to "new" (rank a2.shape[0]) if
// b2.shape[0] == b1.shape[1] == a1.shape[1] == a2.shape[0], unless the old
// test passed too and the weight is square with a2.shape[0] == W.shape[0].
// With wShape nil the weight is assumed to be [b2.shape[0], b1.shape[1]].
func gloraFormat(m *Module, wShape []int) (gloraInfo, error) {
	var g gloraInfo
	var err error
	for _, p := range []struct {
		dst  **Tensor
		role string
	}{{&g.a1, RoleA1}, {&g.a2, RoleA2}, {&g.b1, RoleB1}, {&g.b2, RoleB2}} {
		if *p.dst, err = m.tensor(p.role); err != nil {
			return g, err
		}
		if len((*p.dst).Shape) < 2 {
			return g, fmt.Errorf("adapter: glora: %s needs at least 2 dims, have %v", p.role, (*p.dst).Shape)
		}
	}
	a1, a2, b1, b2 := g.a1.Shape, g.a2.Shape, g.b1.Shape, g.b2.Shape
	if b2[1] == b1[0] && b1[0] == a1[0] && a1[0] == a2[1] {
		g.rank, g.old, g.rankKnown = a1[0], true, true
	}
	if b2[0] == b1[1] && b1[1] == a1[1] && a1[1] == a2[0] {
		if wShape == nil {
			wShape = []int{b2[0], b1[1]}
		}
		square := len(wShape) >= 2 && a2[0] == wShape[0] && wShape[0] == wShape[1]
		if !(g.old && square) {
			g.old, g.rank, g.rankKnown = false, a2[0], true
		}
	}
	return g, nil
}

// gloraDelta returns GLoRA's unscaled ΔW for weight w:
// old: b2@b1 + (W.flatten(1)@a2)@a1; new: (W@a1)@a2 + b1@b2 where W@a1
// contracts W's dim 1 (the input dim, spatial dims kept for conv weights).
// All four factors are flattened to 2-D first.
func gloraDelta(w *Tensor, g gloraInfo) ([]float32, error) {
	type m2 struct {
		d    []float32
		r, c int
	}
	f := func(t *Tensor) m2 {
		r, c, _ := flat2(t, "")
		return m2{t.Data, r, c}
	}
	a1, a2, b1, b2 := f(g.a1), f(g.a2), f(g.b1), f(g.b2)
	n := len(w.Data)
	mismatch := func(what string) error {
		return fmt.Errorf("adapter: glora: shape mismatch (%s): W %v, a1 %v, a2 %v, b1 %v, b2 %v", what, w.Shape, g.a1.Shape, g.a2.Shape, g.b1.Shape, g.b2.Shape)
	}
	var wa []float32
	var war, wac int
	var bb m2
	if g.old {
		wr, wc, err := flat2(w, "glora weight")
		if err != nil {
			return nil, err
		}
		if wc != a2.r || a2.c != a1.r {
			return nil, mismatch("W@a2@a1")
		}
		t := matmul(w.Data, wr, wc, a2.d, a2.c)
		wa, war, wac = matmul(t, wr, a2.c, a1.d, a1.c), wr, a1.c
		if b2.c != b1.r {
			return nil, mismatch("b2@b1")
		}
		bb = m2{matmul(b2.d, b2.r, b2.c, b1.d, b1.c), b2.r, b1.c}
		// torch adds the two 2-D products before reshaping (broadcasting
		// aside, they must have equal shapes).
		if bb.r != war || bb.c != wac {
			return nil, mismatch("b2@b1 + W@a2@a1")
		}
		if war*wac != n {
			return nil, mismatch("reshape")
		}
		for i := range wa {
			wa[i] = bb.d[i] + wa[i]
		}
		return wa, nil
	}
	if len(w.Shape) < 2 {
		return nil, mismatch("W needs 2+ dims")
	}
	o, in := w.Shape[0], w.Shape[1]
	sp := 1
	for _, d := range w.Shape[2:] {
		sp *= d
	}
	if in != a1.r || a1.c != a2.r {
		return nil, mismatch("W@a1@a2")
	}
	j, i2 := a1.c, a2.c
	if o*i2*sp != n {
		return nil, mismatch("reshape")
	}
	// Per output row o: W[o] is [in × sp]; (W@a1)[o] = a1ᵀ [j×in] @ W[o].
	var res []float32
	if sp == 1 {
		res = matmul(matmul(w.Data, o, in, a1.d, j), o, j, a2.d, i2)
	}
	t := make([]float32, j*sp)
	for k := 0; sp != 1 && k < o; k++ {
		if k == 0 {
			res = make([]float32, o*i2*sp)
		}
		gemm(true, false, j, sp, in, a1.d, j, w.Data[k*in*sp:], sp, t, sp)
		gemm(true, false, i2, sp, j, a2.d, i2, t, sp, res[k*i2*sp:], sp)
	}
	if b1.c != b2.r || b1.r*b2.c != n {
		return nil, mismatch("b1@b2")
	}
	bp := matmul(b1.d, b1.r, b1.c, b2.d, b2.c)
	for i := range res {
		res[i] += bp[i]
	}
	return res, nil
}

// applyGLoRA applies a GLoRA module; the delta is computed from w before it
// is modified.
func applyGLoRA(w *Tensor, m *Module, opt Options) error {
	g, err := gloraFormat(m, w.Shape)
	if err != nil {
		return err
	}
	sc, err := scale64(m, w.Shape)
	if err != nil {
		return err
	}
	d, err := gloraDelta(w, g)
	if err != nil {
		return err
	}
	return finishAdditive(w, m, d, sc, opt)
}
