package svd

import (
	"math"
	"sort"
)

// KronTruncate returns the best rank-k approximation of M = scale·kron(A, B)
// (a LoKr delta) without forming M: the singular triplets of a Kronecker
// product are the products of those of A and B (σ = σ_A,i·σ_B,j, u = u_A,i
// ⊗ u_B,j, v = v_A,i ⊗ v_B,j), so exact SVDs of the two small factors give
// M's whole spectrum. k is chosen as TruncateDense chooses it (maxRank, or
// rule on the exact spectrum capped by maxRank). It returns up = U·S (sign
// of scale included) and down = Vt, k, the full spectrum of M (descending)
// and ‖M‖_F².
func KronTruncate(a, b Dense, scale float64, maxRank int, rule *Rule) (up, down Dense, k int, spec []float64, total float64, err error) {
	ra, err := Exact(a)
	if err != nil {
		return up, down, 0, nil, 0, err
	}
	rb, err := Exact(b)
	if err != nil {
		return up, down, 0, nil, 0, err
	}
	type pair struct {
		i, j int
		s    float64
	}
	abs := math.Abs(scale)
	pairs := make([]pair, 0, len(ra.S)*len(rb.S))
	for i, sa := range ra.S {
		for j, sb := range rb.S {
			pairs = append(pairs, pair{i, j, abs * float64(sa) * float64(sb)})
		}
	}
	sort.SliceStable(pairs, func(x, y int) bool { return pairs[x].s > pairs[y].s })
	spec = make([]float64, len(pairs))
	for t, p := range pairs {
		spec[t] = p.s
		total += p.s * p.s
	}
	k = len(spec)
	if maxRank > 0 {
		k = min(k, maxRank)
	}
	if rule != nil {
		k = rule.Rank(spec, k)
	}
	k = max(min(k, len(spec)), 1)
	rows, cols := a.Rows*b.Rows, a.Cols*b.Cols
	up = Dense{Rows: rows, Cols: k, Data: make([]float32, rows*k)}
	down = Dense{Rows: k, Cols: cols, Data: make([]float32, k*cols)}
	sign := 1.0
	if scale < 0 {
		sign = -1
	}
	for t := 0; t < k; t++ {
		p := pairs[t]
		s := sign * p.s
		for ia := 0; ia < a.Rows; ia++ {
			ua := float64(ra.U.Data[ia*ra.U.Cols+p.i]) * s
			for ib := 0; ib < b.Rows; ib++ {
				up.Data[(ia*b.Rows+ib)*k+t] = float32(ua * float64(rb.U.Data[ib*rb.U.Cols+p.j]))
			}
		}
		row := down.Data[t*cols : (t+1)*cols]
		for ja := 0; ja < a.Cols; ja++ {
			va := float64(ra.Vt.Data[p.i*ra.Vt.Cols+ja])
			for jb := 0; jb < b.Cols; jb++ {
				row[ja*b.Cols+jb] = float32(va * float64(rb.Vt.Data[p.j*rb.Vt.Cols+jb]))
			}
		}
	}
	return up, down, k, spec, total, nil
}
