package adapter

import (
	"errors"
	"fmt"
)

// DeltaNorm2 returns ‖Delta(m, targetShape)‖_F² (the scaled delta, before
// strength) without building the dense delta where a closed form exists:
//
//   - LoRA/LoCon (and Tucker, whose mid folds into an r×in·k² down):
//     ‖U·D‖² = Σ_ij (UᵀU)_ij (DDᵀ)_ij, two r×r Gram matrices;
//   - LoKr: ‖W1 ⊗ W2‖ = ‖W1‖·‖W2‖, each factor full, a Gram product or a
//     Tucker rebuild of the small second factor;
//   - LoHa: (A1B1)⊙(A2B2) = (A1•A2)(B1•B2) with row-wise Khatri–Rao
//     factors of inner size r1·r2, so ‖·‖² = Σ (KᵀK)∘(LLᵀ) from two
//     (r1r2)² Gram matrices; when that costs more than the product itself
//     (large ranks), the rows are streamed in blocks instead, never
//     holding the whole delta. Tucker LoHa rebuilds its factors.
//   - diff/norm: the diff tensor's norm.
//
// Sums are in float64. Modules whose delta needs the weight (DoRA, GLoRA,
// OFT, BOFT, IA3, set) give ErrNeedsWeight (wrapped).
func DeltaNorm2(m *Module, targetShape []int) (float64, error) {
	if m == nil {
		return 0, errors.New("adapter: nil module")
	}
	n, ok := shapeNumel(targetShape)
	if !ok {
		return 0, fmt.Errorf("adapter: invalid target shape %v", targetShape)
	}
	var raw float64
	switch m.Algo {
	case LoRA, LoHa, LoKr:
		if m.has(RoleDoRAScale) {
			return 0, fmt.Errorf("%w: %s module has dora_scale", ErrNeedsWeight, m.Algo)
		}
		var numel int
		var err error
		switch m.Algo {
		case LoRA:
			raw, numel, err = loraNorm2(m)
		case LoHa:
			raw, numel, err = lohaNorm2(m)
		case LoKr:
			raw, numel, err = lokrNorm2(m)
		}
		if err != nil {
			return 0, err
		}
		if numel != n {
			return 0, fmt.Errorf("adapter: %s: shape mismatch: delta has %d elements, weight %v has %d", m.Algo, numel, targetShape, n)
		}
		sc, err := scale64(m, targetShape)
		if err != nil {
			return 0, err
		}
		// Delta scales in float32: match its factor
		f := float64(float32(sc))
		return raw * f * f, nil
	case Diff, Norm:
		d, err := m.tensor(RoleDiff)
		if err != nil {
			return 0, err
		}
		if !sameShape(d.Shape, targetShape) {
			return 0, fmt.Errorf("adapter: %s: shape mismatch: diff %v != weight %v", m.Algo, d.Shape, targetShape)
		}
		return sumSq(d.Data), nil
	case GLoRA, OFT, BOFT, IA3, Set:
		return 0, fmt.Errorf("%w: %s", ErrNeedsWeight, m.Algo)
	}
	return 0, fmt.Errorf("adapter: unknown algorithm %q", m.Algo)
}

func sumSq(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}

// productNorm2 is ‖A·B‖² for row-major A (rows×r) and B (r×cols):
// Σ_ij (AᵀA)_ij (BBᵀ)_ij.
func productNorm2(a []float32, rows, r int, b []float32, cols int) float64 {
	g := make([]float64, r*r)
	for o := 0; o < rows; o++ {
		row := a[o*r : (o+1)*r]
		for i := 0; i < r; i++ {
			ri := float64(row[i])
			for j := 0; j < r; j++ {
				g[i*r+j] += ri * float64(row[j])
			}
		}
	}
	var n2 float64
	for i := 0; i < r; i++ {
		bi := b[i*cols : (i+1)*cols]
		for j := 0; j < r; j++ {
			bj := b[j*cols : (j+1)*cols]
			var h float64
			for k := range bi {
				h += float64(bi[k]) * float64(bj[k])
			}
			n2 += g[i*r+j] * h
		}
	}
	return n2
}

func loraNorm2(m *Module) (float64, int, error) {
	up, down, rows, r, cols, err := loraFactors(m)
	if err != nil {
		return 0, 0, err
	}
	return productNorm2(up, rows, r, down, cols), rows * cols, nil
}

// factorNorm2 is ‖F‖² of a LoKr factor: full, a@b, or (w2) the Tucker
// rebuild with lokr_t2; it returns the factor's numel.
func factorNorm2(m *Module, full, a, b, t string) (float64, int, error) {
	if m.has(full) {
		f, _ := m.tensor(full)
		return sumSq(f.Data), len(f.Data), nil
	}
	if t != "" && m.has(t) {
		f, err := lokrFactor(m, full, a, b, t)
		if err != nil {
			return 0, 0, err
		}
		return sumSq(f.Data), len(f.Data), nil
	}
	ta, err := m.tensor(a)
	if err != nil {
		return 0, 0, err
	}
	tb, err := m.tensor(b)
	if err != nil {
		return 0, 0, err
	}
	ar, ac, err := mat2(ta, "lokr "+a)
	if err != nil {
		return 0, 0, err
	}
	br, bc, err := mat2(tb, "lokr "+b)
	if err != nil {
		return 0, 0, err
	}
	if ac != br {
		return 0, 0, fmt.Errorf("adapter: lokr %s@%s: shape mismatch: %v @ %v", a, b, ta.Shape, tb.Shape)
	}
	return productNorm2(ta.Data, ar, ac, tb.Data, bc), ar * bc, nil
}

func lokrNorm2(m *Module) (float64, int, error) {
	n1, e1, err := factorNorm2(m, RoleLoKrW1, RoleLoKrW1A, RoleLoKrW1B, "")
	if err != nil {
		return 0, 0, err
	}
	n2, e2, err := factorNorm2(m, RoleLoKrW2, RoleLoKrW2A, RoleLoKrW2B, RoleLoKrT2)
	if err != nil {
		return 0, 0, err
	}
	return n1 * n2, e1 * e2, nil
}

func lohaNorm2(m *Module) (float64, int, error) {
	if m.has(RoleHadaT1) {
		d, err := lohaDelta(m) // Tucker LoHa: rebuild (rare, conv only)
		if err != nil {
			return 0, 0, err
		}
		return sumSq(d), len(d), nil
	}
	var t [4]*Tensor
	var dims [4][2]int
	for i, role := range []string{RoleHadaW1A, RoleHadaW1B, RoleHadaW2A, RoleHadaW2B} {
		x, err := m.tensor(role)
		if err != nil {
			return 0, 0, err
		}
		r, c, err := mat2(x, "loha "+role)
		if err != nil {
			return 0, 0, err
		}
		t[i], dims[i] = x, [2]int{r, c}
	}
	rows, r1, cols := dims[0][0], dims[0][1], dims[1][1]
	r2 := dims[2][1]
	if dims[1][0] != r1 || dims[3][0] != r2 || dims[2][0] != rows || dims[3][1] != cols {
		return 0, 0, fmt.Errorf("adapter: loha: shape mismatch: (%v@%v) ⊙ (%v@%v)", t[0].Shape, t[1].Shape, t[2].Shape, t[3].Shape)
	}
	R := r1 * r2
	// scalar float64 Gram updates cost about 8 times a BLAS float32
	// multiply-add of the streamed products
	gramCost := 8 * float64(rows+cols) * float64(R) * float64(R) / 2
	streamCost := float64(rows) * float64(cols) * float64(r1+r2+1)
	if gramCost <= streamCost {
		return lohaGram(t[0].Data, t[1].Data, t[2].Data, t[3].Data, rows, cols, r1, r2), rows * cols, nil
	}
	return lohaStream(t[0].Data, t[1].Data, t[2].Data, t[3].Data, rows, cols, r1, r2), rows * cols, nil
}

// lohaGram: K_p = a1_p ⊗ a2_p (rows), L_q = b1_q ⊗ b2_q (columns);
// ‖(A1B1)⊙(A2B2)‖² = Σ_{uv} (Σ_p K_pu K_pv)(Σ_q L_qu L_qv).
func lohaGram(a1, b1, a2, b2 []float32, rows, cols, r1, r2 int) float64 {
	R := r1 * r2
	k := make([]float64, R)
	// gram accumulates the upper triangle of Σ_x k_x k_xᵀ, where k_x is
	// the Khatri–Rao row x of factors x1 (r1 values) and x2 (r2 values).
	gram := func(n int, fill func(x int)) []float64 {
		g := make([]float64, R*R)
		for x := 0; x < n; x++ {
			fill(x)
			for u := 0; u < R; u++ {
				ku := k[u]
				if ku == 0 {
					continue
				}
				gu := g[u*R : (u+1)*R]
				for v := u; v < R; v++ {
					gu[v] += ku * k[v]
				}
			}
		}
		return g
	}
	ga := gram(rows, func(p int) {
		for i := 0; i < r1; i++ {
			x := float64(a1[p*r1+i])
			for j := 0; j < r2; j++ {
				k[i*r2+j] = x * float64(a2[p*r2+j])
			}
		}
	})
	gb := gram(cols, func(q int) {
		for i := 0; i < r1; i++ {
			x := float64(b1[i*cols+q])
			for j := 0; j < r2; j++ {
				k[i*r2+j] = x * float64(b2[j*cols+q])
			}
		}
	})
	var n2 float64
	for u := 0; u < R; u++ {
		n2 += ga[u*R+u] * gb[u*R+u]
		for v := u + 1; v < R; v++ {
			n2 += 2 * ga[u*R+v] * gb[u*R+v]
		}
	}
	return n2
}

// lohaStream computes blocks of rows of both products with gemm and sums
// the squared Hadamard product, holding at most a block of rows.
func lohaStream(a1, b1, a2, b2 []float32, rows, cols, r1, r2 int) float64 {
	block := max(1, min(rows, (1<<20)/max(cols, 1)))
	x := make([]float32, block*cols)
	y := make([]float32, block*cols)
	var n2 float64
	for p0 := 0; p0 < rows; p0 += block {
		h := min(block, rows-p0)
		gemm(false, false, h, cols, r1, a1[p0*r1:], r1, b1, cols, x, cols)
		gemm(false, false, h, cols, r2, a2[p0*r2:], r2, b2, cols, y, cols)
		var s float64
		for i := 0; i < h*cols; i++ {
			v := float64(x[i]) * float64(y[i])
			s += v * v
		}
		n2 += s
	}
	return n2
}
