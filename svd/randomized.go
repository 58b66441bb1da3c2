package svd

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/mat"
)

// Randomized computes a rank-k truncated SVD of m with the randomized range
// finder of Halko, Martinsson and Tropp (2011):
//
//	Ω  = Gaussian Cols×(k+p) (seeded by opt.Seed)
//	Q  = orth(A Ω)
//	q times: Z = orth(Aᵀ Q), Q = orth(A Z)
//	B  = Qᵀ A,  B = U_B S V_Bᵀ (small exact SVD, float64)
//	U  = Q U_B[:, :k], Vt = V_B[:, :k]ᵀ
//
// The products with A are float32 (blas32 Sgemm, 2q+2 passes over A);
// the QRs and the small SVD are float64. k is clamped to min(Rows, Cols);
// when k+p >= min(Rows, Cols) the sketch would not be smaller than the
// matrix and Exact is used instead (then truncated to k). TotalFro2 is the
// exact squared Frobenius norm of m, so RetainedTotal and
// sqrt(1 - RetainedTotal²) are true fractions of the whole matrix, not of
// the top k+p spectrum.
//
// With the defaults (q = 2, p = 10) the rank-k error is typically within 1%
// of the optimal (Eckart–Young) error and the top singular values are
// accurate to about 4 digits.
func Randomized(m Dense, k int, opt Options) (Result, error) {
	fro2, err := m.check("matrix")
	if err != nil {
		return Result{}, err
	}
	if k < 1 {
		return Result{}, fmt.Errorf("svd: rank k = %d, must be at least 1", k)
	}
	p, q := opt.params()
	rows, cols := m.Rows, m.Cols
	mn := min(rows, cols)
	k = min(k, mn)
	// p > mn is tested first so that a huge Oversample cannot overflow k+p.
	if p > mn || k+p >= mn {
		a := mat.NewDense(rows, cols, toF64(m.Data))
		return exactDense(a, k, fro2)
	}
	l := k + p
	impl := blas32.Implementation()
	A := m.Data

	// Y = A Ω (rows×l); Ω is cols×l and its buffer is reused for Z.
	z := make([]float32, cols*l)
	newRNG(opt.Seed).fillNormal(z)
	y := make([]float32, rows*l)
	mulNN(A, rows, cols, z, l, y)
	var w qrWork
	w.orth(y, rows, l)
	for it := 0; it < q; it++ {
		mulTN(A, rows, cols, y, l, z)
		w.orth(z, cols, l)
		mulNN(A, rows, cols, z, l, y)
		w.orth(y, rows, l)
	}
	// Bᵀ = Aᵀ Q (cols×l). SVD Bᵀ = W S Xᵀ gives B = X S Wᵀ, so the left
	// singular vectors of B are X (l×l) and the right ones W (cols×l).
	mulTN(A, rows, cols, y, l, z)
	bt := mat.NewDense(cols, l, toF64(z))
	var dec mat.SVD
	if !dec.Factorize(bt, mat.SVDThin) {
		return Result{}, errors.New("svd: gonum SVD of the sketch did not converge")
	}
	s := dec.Values(nil)
	var wv, xv mat.Dense
	dec.UTo(&wv) // cols×l
	dec.VTo(&xv) // l×l

	res := Result{
		U:         Dense{Rows: rows, Cols: k, Data: make([]float32, rows*k)},
		S:         make([]float32, k),
		Vt:        Dense{Rows: k, Cols: cols, Data: make([]float32, k*cols)},
		TotalFro2: fro2,
	}
	for j := 0; j < k; j++ {
		res.S[j] = float32(s[j])
	}
	// U = Q X[:, :k].
	xr := xv.RawMatrix()
	x32 := make([]float32, l*k)
	for i := 0; i < l; i++ {
		for j := 0; j < k; j++ {
			x32[i*k+j] = float32(xr.Data[i*xr.Stride+j])
		}
	}
	impl.Sgemm(blas.NoTrans, blas.NoTrans, rows, k, l, 1, y, l, x32, k, 0, res.U.Data, k)
	// Vt = W[:, :k]ᵀ.
	wr := wv.RawMatrix()
	for c := 0; c < cols; c++ {
		row := wr.Data[c*wr.Stride : c*wr.Stride+k]
		for j, v := range row {
			res.Vt.Data[j*cols+c] = float32(v)
		}
	}
	return res, nil
}
