package svd

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// qrWork holds reusable float64 workspace for thin QR factorizations.
type qrWork struct {
	tau, work []float64
	buf       []float64
}

func (w *qrWork) grow(n int) []float64 {
	if cap(w.work) < n {
		w.work = make([]float64, n)
	}
	return w.work[:n]
}

// factor computes the Householder QR of the rows×cols matrix a (row-major,
// stride cols) in place, leaving R in the upper triangle and the reflectors
// below it; it returns the kk = min(rows, cols) reflector scales.
func (w *qrWork) factor(a []float64, rows, cols int) (tau []float64) {
	kk := min(rows, cols)
	g := blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: a}
	if cap(w.tau) < kk {
		w.tau = make([]float64, kk)
	}
	tau = w.tau[:kk]
	var q [1]float64
	lapack64.Geqrf(g, tau, q[:], -1)
	lapack64.Geqrf(g, tau, w.grow(max(1, int(q[0]), cols)), max(1, int(q[0]), cols))
	return tau
}

// formQ overwrites the first kk = len(tau) columns of the factored a
// (rows×cols, stride cols, rows >= kk) with the orthonormal Q of the QR.
func (w *qrWork) formQ(a []float64, rows, cols int, tau []float64) {
	kk := len(tau)
	g := blas64.General{Rows: rows, Cols: kk, Stride: cols, Data: a}
	var q [1]float64
	lapack64.Orgqr(g, tau, q[:], -1)
	lw := max(1, int(q[0]), kk)
	lapack64.Orgqr(g, tau, w.grow(lw), lw)
}

// orth replaces the rows×cols float32 matrix y (rows >= cols) by an
// orthonormal basis of its column space (the Q of its thin QR), computed in
// float64.
func (w *qrWork) orth(y []float32, rows, cols int) {
	n := rows * cols
	if cap(w.buf) < n {
		w.buf = make([]float64, n)
	}
	b := w.buf[:n]
	for i, v := range y {
		b[i] = float64(v)
	}
	tau := w.factor(b, rows, cols)
	w.formQ(b, rows, cols, tau)
	for i, v := range b {
		y[i] = float32(v)
	}
}
