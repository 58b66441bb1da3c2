package adapter

import (
	"fmt"
	"math"
)

// cayley returns the float32 Cayley rotations R = (I+Q)(I−Q)⁻¹ for every
// b×b block of blocks (flattened [nb, b, b]), with Q = B − Bᵀ (rounded to
// float32 like torch) and the COFT constraint: if alpha > 0 and
// ‖Q‖_F + 1e-8 > alpha over ALL blocks, Q ← Q·alpha/(‖Q‖_F + 1e-8). The
// solve runs in float64 and R is rounded once.
func cayley(blocks []float32, nb, b int, alpha float64) ([]float32, error) {
	q := make([]float32, len(blocks))
	for k := 0; k < nb; k++ {
		blk := blocks[k*b*b : (k+1)*b*b]
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				q[k*b*b+i*b+j] = blk[i*b+j] - blk[j*b+i]
			}
		}
	}
	qs := make([]float64, len(q))
	for i, v := range q {
		qs[i] = float64(v)
	}
	if alpha > 0 {
		var acc float64
		for _, v := range q {
			acc += float64(v) * float64(v)
		}
		qn := float64(float32(math.Sqrt(acc)) + 1e-8)
		if qn > alpha {
			for i := range qs {
				qs[i] = qs[i] * alpha / qn
			}
		}
	}
	r := make([]float32, len(q))
	a := make([]float64, b*b)
	x := make([]float64, b*b)
	for k := 0; k < nb; k++ {
		qk := qs[k*b*b : (k+1)*b*b]
		// R = (I+Q)(I−Q)⁻¹  ⇔  Rᵀ = (I−Q)⁻ᵀ(I+Q)ᵀ = (I+Q)⁻¹(I−Q), using
		// Qᵀ = −Q; solve (I+Q)·X = (I−Q) and take R = Xᵀ.
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				id := 0.0
				if i == j {
					id = 1
				}
				a[i*b+j] = id + qk[i*b+j]
				x[i*b+j] = id - qk[i*b+j]
			}
		}
		if err := solve(a, x, b); err != nil {
			return nil, err
		}
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				r[k*b*b+i*b+j] = float32(x[j*b+i])
			}
		}
	}
	return r, nil
}

// solve overwrites x (n×n) with a⁻¹x by Gauss-Jordan elimination with
// partial pivoting (a is destroyed).
func solve(a, x []float64, n int) error {
	for c := 0; c < n; c++ {
		p := c
		for i := c + 1; i < n; i++ {
			if math.Abs(a[i*n+c]) > math.Abs(a[p*n+c]) {
				p = i
			}
		}
		piv := a[p*n+c]
		if piv == 0 || math.IsNaN(piv) {
			return fmt.Errorf("adapter: oft: singular Cayley system")
		}
		if p != c {
			for j := 0; j < n; j++ {
				a[p*n+j], a[c*n+j] = a[c*n+j], a[p*n+j]
				x[p*n+j], x[c*n+j] = x[c*n+j], x[p*n+j]
			}
		}
		for j := 0; j < n; j++ {
			a[c*n+j] /= piv
			x[c*n+j] /= piv
		}
		for i := 0; i < n; i++ {
			if i == c {
				continue
			}
			f := a[i*n+c]
			if f == 0 {
				continue
			}
			for j := 0; j < n; j++ {
				a[i*n+j] -= f * a[c*n+j]
				x[i*n+j] -= f * x[c*n+j]
			}
		}
	}
	return nil
}

// oftAlpha returns the constraint alpha (0 when absent, as ComfyUI's OFT).
func oftAlpha(m *Module) float64 {
	a, ok := alphaOf(m)
	if !ok {
		return 0
	}
	return a
}

// applyOFT implements ComfyUI's OFT: W viewed as [nb, b, rest] along the
// output dim, lora_diff[k,m,…] = Σ_n A[k,n,m]·W[k,n,…] with A = s·R − s·I
// (R − I when OFTStrengthSquared is false), then W += s·lora_diff (strength
// twice) — or DoRA with scale = alpha (the constraint, 0 if absent), as
// ComfyUI does. rescale is ignored, as in ComfyUI.
func applyOFT(w *Tensor, m *Module, opt Options) error {
	blocks, err := m.tensor(RoleOFTBlocks)
	if err != nil {
		return err
	}
	if len(blocks.Shape) != 3 || blocks.Shape[1] != blocks.Shape[2] {
		return fmt.Errorf("adapter: oft: oft_blocks must be [n, b, b], have %v", blocks.Shape)
	}
	nb, b := blocks.Shape[0], blocks.Shape[1]
	if len(w.Shape) == 0 || w.Shape[0] != nb*b {
		return fmt.Errorf("adapter: oft: shape mismatch: weight %v cannot be viewed as %d blocks of %d rows", w.Shape, nb, b)
	}
	ds, err := m.optTensor(RoleDoRAScale)
	if err != nil {
		return err
	}
	if ds != nil {
		if err := checkDoRA(w.Shape, ds); err != nil {
			return err
		}
	}
	alpha := oftAlpha(m)
	r, err := cayley(blocks.Data, nb, b, alpha)
	if err != nil {
		return err
	}
	s := opt.Strength
	a := make([]float32, len(r))
	for k := 0; k < nb; k++ {
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				var id float32
				if i == j {
					id = 1
				}
				x := r[k*b*b+i*b+j]
				if opt.OFTStrengthSquared {
					a[k*b*b+i*b+j] = float32(x*s) - float32(s*id)
				} else {
					a[k*b*b+i*b+j] = x - id
				}
			}
		}
	}
	rest := 0
	if nb*b > 0 {
		rest = len(w.Data) / (nb * b)
	}
	diff := make([]float32, len(w.Data))
	for k := 0; k < nb; k++ {
		off := k * b * rest
		gemm(true, false, b, rest, b, a[k*b*b:], b, w.Data[off:], rest, diff[off:], rest)
	}
	if ds != nil {
		sc := alpha
		if !opt.OFTStrengthSquared {
			sc = 1
		}
		return applyDoRA(w, diff, sc, opt, ds)
	}
	addScaled(w.Data, diff, s)
	return nil
}

// applyBOFT implements ComfyUI's butterfly OFT. For stage i (of m), with
// g = 2 and k = 2^i·(b/2), rows are permuted (row a·2k + γ·k + κ goes to
// a·2k + κ·2 + γ), each b-row block j is multiplied by R_ij (blended to
// s·R + (1−s)·I when s ≠ 1), and the permutation is undone. The result is
// multiplied by rescale (broadcast) when present, ΔW = result − W, and
// W += s·ΔW (strength twice; W += ΔW when OFTStrengthSquared is false), or
// DoRA with scale = alpha. ComfyUI fails on a BOFT module without alpha
// (comparison with None), so does Apply.
func applyBOFT(w *Tensor, m *Module, opt Options) error {
	blocks, err := m.tensor(RoleOFTBlocks)
	if err != nil {
		return err
	}
	if len(blocks.Shape) != 4 || blocks.Shape[2] != blocks.Shape[3] {
		return fmt.Errorf("adapter: boft: oft_blocks must be [m, n, b, b], have %v", blocks.Shape)
	}
	alpha, ok := alphaOf(m)
	if !ok {
		return fmt.Errorf("adapter: boft: alpha (constraint) missing; ComfyUI fails on this module")
	}
	bm, nb, b := blocks.Shape[0], blocks.Shape[1], blocks.Shape[2]
	if len(w.Shape) == 0 || w.Shape[0] != nb*b {
		return fmt.Errorf("adapter: boft: shape mismatch: weight %v cannot be viewed as %d blocks of %d rows", w.Shape, nb, b)
	}
	out := w.Shape[0]
	rb := b / 2
	for i := 0; i < bm; i++ {
		if i >= 62 || rb == 0 || out%((1<<i)*rb*2) != 0 {
			return fmt.Errorf("adapter: boft: shape mismatch: weight %v, blocks %v (stage %d)", w.Shape, blocks.Shape, i)
		}
	}
	var rescale []float32
	if rt, err := m.optTensor(RoleRescale); err != nil {
		return err
	} else if rt != nil {
		var ok bool
		if rescale, ok = expandTo(rt.Data, rt.Shape, w.Shape); !ok {
			return fmt.Errorf("adapter: boft: shape mismatch: rescale %v vs weight %v", rt.Shape, w.Shape)
		}
	}
	ds, err := m.optTensor(RoleDoRAScale)
	if err != nil {
		return err
	}
	if ds != nil {
		if err := checkDoRA(w.Shape, ds); err != nil {
			return err
		}
	}
	r, err := cayley(blocks.Data, bm*nb, b, alpha)
	if err != nil {
		return err
	}
	s := opt.Strength
	if s != 1 {
		for k := 0; k < bm*nb; k++ {
			for ii := 0; ii < b; ii++ {
				for jj := 0; jj < b; jj++ {
					var id float32
					if ii == jj {
						id = 1
					}
					p := k*b*b + ii*b + jj
					r[p] = float32(r[p]*s) + float32((1-s)*id)
				}
			}
		}
	}
	rest := 0
	if out > 0 {
		rest = len(w.Data) / out
	}
	cur := append([]float32(nil), w.Data...)
	gath := make([]float32, b*rest)
	res := make([]float32, b*rest)
	src := make([]int, b)
	for i := 0; i < bm; i++ {
		k := (1 << i) * rb
		for blk := 0; blk < nb; blk++ {
			for j := 0; j < b; j++ {
				p := blk*b + j // position in the permuted order
				a, rem := p/(2*k), p%(2*k)
				kk, g := rem/2, rem%2
				src[j] = a*2*k + g*k + kk
				copy(gath[j*rest:(j+1)*rest], cur[src[j]*rest:(src[j]+1)*rest])
			}
			gemm(false, false, b, rest, b, r[(i*nb+blk)*b*b:], b, gath, rest, res, rest)
			for j := 0; j < b; j++ {
				copy(cur[src[j]*rest:(src[j]+1)*rest], res[j*rest:(j+1)*rest])
			}
		}
	}
	if rescale != nil {
		for i := range cur {
			cur[i] *= rescale[i]
		}
	}
	for i := range cur {
		cur[i] -= w.Data[i]
	}
	if ds != nil {
		sc := alpha
		if !opt.OFTStrengthSquared {
			sc = 1
		}
		return applyDoRA(w, cur, sc, opt, ds)
	}
	if opt.OFTStrengthSquared {
		addScaled(w.Data, cur, s)
	} else {
		for i := range w.Data {
			w.Data[i] += cur[i]
		}
	}
	return nil
}
