package svd

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// core is the factorization Up = Qu Ru, Downᵀ = Qd Rd of a Factored, with
// C = Ru Rdᵀ so that Up@Down = Qu C Qdᵀ.
type core struct {
	rows, cols, r int
	a, b          int       // a = min(rows, r), b = min(cols, r)
	qu, qd        []float64 // rows×r and cols×r buffers; Q in the first a (b) columns
	c             *mat.Dense
}

func (f Factored) validate() error {
	if _, err := f.Up.check("up"); err != nil {
		return err
	}
	if _, err := f.Down.check("down"); err != nil {
		return err
	}
	if f.Up.Cols != f.Down.Rows {
		return fmt.Errorf("svd: up is %dx%d but down is %dx%d: inner ranks differ",
			f.Up.Rows, f.Up.Cols, f.Down.Rows, f.Down.Cols)
	}
	return nil
}

// newCore computes the QRs and the core matrix; with wantQ the orthonormal
// factors are formed as well.
func newCore(f Factored, wantQ bool) (*core, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	c := &core{rows: f.Up.Rows, cols: f.Down.Cols, r: f.Up.Cols}
	r := c.r
	c.a, c.b = min(c.rows, r), min(c.cols, r)
	var w qrWork

	c.qu = toF64(f.Up.Data) // rows×r
	tauU := append([]float64(nil), w.factor(c.qu, c.rows, r)...)
	ru := upperTrap(c.qu, c.a, r)

	c.qd = make([]float64, c.cols*r) // Downᵀ, cols×r
	for i := 0; i < r; i++ {
		for j, v := range f.Down.Data[i*c.cols : (i+1)*c.cols] {
			c.qd[j*r+i] = float64(v)
		}
	}
	tauD := w.factor(c.qd, c.cols, r)
	rd := upperTrap(c.qd, c.b, r)

	// C = Ru Rdᵀ (a×b).
	cd := make([]float64, c.a*c.b)
	blas64.Implementation().Dgemm(blas.NoTrans, blas.Trans, c.a, c.b, r, 1, ru, r, rd, r, 0, cd, c.b)
	c.c = mat.NewDense(c.a, c.b, cd)
	if wantQ {
		w.formQ(c.qd, c.cols, r, tauD)
		w.formQ(c.qu, c.rows, r, tauU)
	}
	return c, nil
}

// upperTrap copies the upper trapezoid (first a rows) of a factored
// rows×cols matrix, zeroing the reflectors below the diagonal.
func upperTrap(a []float64, rows, cols int) []float64 {
	out := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		copy(out[i*cols+i:(i+1)*cols], a[i*cols+i:(i+1)*cols])
	}
	return out
}

// FromFactors computes the SVD of M = Up@Down exactly without forming the
// dense Rows×Cols product: Up = Qu Ru and Downᵀ = Qd Rd (thin QRs), the
// small core Ru Rdᵀ = Uc S Vcᵀ, then U = Qu Uc[:, :k] and
// Vt = (Qd Vc[:, :k])ᵀ. All arithmetic is float64; the cost is
// O((Rows+Cols)·r² + r³ + (Rows+Cols)·r·k).
//
// The result holds min(k, Rows, Cols, r) triplets (k is clamped; it must be
// at least 1). Factors with r > Rows or r > Cols and rank-deficient factors
// are handled; TotalFro2 is ‖Up@Down‖_F², i.e. the sum of all squared
// singular values of the core.
func FromFactors(f Factored, k int) (Result, error) {
	if k < 1 {
		return Result{}, fmt.Errorf("svd: rank k = %d, must be at least 1", k)
	}
	c, err := newCore(f, true)
	if err != nil {
		return Result{}, err
	}
	var dec mat.SVD
	if !dec.Factorize(c.c, mat.SVDThin) {
		return Result{}, errors.New("svd: gonum SVD of the core did not converge")
	}
	p := min(c.a, c.b)
	k = min(k, p)
	s := dec.Values(nil)
	var uc, vc mat.Dense
	dec.UTo(&uc) // a×p
	dec.VTo(&vc) // b×p
	impl := blas64.Implementation()
	r := c.r

	u := make([]float64, c.rows*k)
	ucr := uc.RawMatrix()
	impl.Dgemm(blas.NoTrans, blas.NoTrans, c.rows, k, c.a, 1, c.qu, r, ucr.Data, ucr.Stride, 0, u, k)
	v := make([]float64, c.cols*k)
	vcr := vc.RawMatrix()
	impl.Dgemm(blas.NoTrans, blas.NoTrans, c.cols, k, c.b, 1, c.qd, r, vcr.Data, vcr.Stride, 0, v, k)

	res := Result{
		U:  Dense{Rows: c.rows, Cols: k, Data: make([]float32, c.rows*k)},
		S:  make([]float32, k),
		Vt: Dense{Rows: k, Cols: c.cols, Data: make([]float32, k*c.cols)},
	}
	for _, x := range s {
		res.TotalFro2 += x * x
	}
	for j := 0; j < k; j++ {
		res.S[j] = float32(s[j])
	}
	for i, x := range u {
		res.U.Data[i] = float32(x)
	}
	for i := 0; i < c.cols; i++ {
		for j := 0; j < k; j++ {
			res.Vt.Data[j*c.cols+i] = float32(v[i*k+j])
		}
	}
	return res, nil
}

// Spectrum returns the singular values of Up@Down, descending, computed
// exactly (float64) with the same QR-core method as FromFactors but without
// singular vectors. It returns min(Rows, Cols, r) values: all r of them for
// the usual LoRA with r <= min(Rows, Cols); when r is larger the product
// cannot have more than min(Rows, Cols) nonzero singular values.
func Spectrum(f Factored) ([]float64, error) {
	c, err := newCore(f, false)
	if err != nil {
		return nil, err
	}
	var dec mat.SVD
	if !dec.Factorize(c.c, mat.SVDNone) {
		return nil, errors.New("svd: gonum SVD of the core did not converge")
	}
	return dec.Values(nil), nil
}
