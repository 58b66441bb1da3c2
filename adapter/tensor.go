package adapter

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Tensor is a dense row-major float32 tensor.
//
// A Tensor is valid when every dimension is non-negative and len(Data)
// equals the product of Shape (1 for a 0-d scalar). Every function of this
// package checks validity and returns an error instead of panicking.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero-filled tensor of the given shape. A negative dimension,
// or a shape whose element count overflows int, gives a tensor with nil Data
// that every other function of the package rejects with an error.
func New(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	n, ok := shapeNumel(s)
	if !ok {
		return &Tensor{Shape: s}
	}
	return &Tensor{Shape: s, Data: make([]float32, n)}
}

// Numel returns the number of elements implied by Shape (1 for a scalar, 0
// for a nil tensor), or -1 if a dimension is negative or the product
// overflows int.
func (t *Tensor) Numel() int {
	if t == nil {
		return 0
	}
	n, ok := shapeNumel(t.Shape)
	if !ok {
		return -1
	}
	return n
}

// shapeNumel multiplies the dimensions, reporting false for a negative
// dimension or an overflow.
func shapeNumel(shape []int) (int, bool) {
	// The product of the non-zero dimensions must fit in int even when a
	// zero dimension makes the element count 0, so that any sub-product
	// computed from the shape later cannot overflow either.
	n, zero := 1, false
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			zero = true
			continue
		}
		if n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	if zero {
		return 0, true
	}
	return n, true
}

// checkTensor validates t, naming it by role in the error.
func checkTensor(t *Tensor, role string) error {
	if t == nil {
		return fmt.Errorf("adapter: %s: nil tensor", role)
	}
	n, ok := shapeNumel(t.Shape)
	if !ok {
		return fmt.Errorf("adapter: %s: invalid shape %v", role, t.Shape)
	}
	if len(t.Data) != n {
		return fmt.Errorf("adapter: %s: shape %v needs %d values, have %d", role, t.Shape, n, len(t.Data))
	}
	return nil
}

// clone returns a deep copy of t.
func (t *Tensor) clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// sameShape reports whether a and b are equal shapes.
func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// flat2 returns the [rows, cols] view of torch's flatten(start_dim=1):
// rows = shape[0], cols = product of the rest. It needs at least 2 dims.
func flat2(t *Tensor, role string) (rows, cols int, err error) {
	if len(t.Shape) < 2 {
		return 0, 0, fmt.Errorf("adapter: %s: need at least 2 dims, have shape %v", role, t.Shape)
	}
	rows = t.Shape[0]
	cols = 1
	for _, d := range t.Shape[1:] {
		cols *= d
	}
	return rows, cols, nil
}

// mat2 checks that t is exactly 2-D (torch.mm operands) and returns its dims.
func mat2(t *Tensor, role string) (rows, cols int, err error) {
	if len(t.Shape) != 2 {
		return 0, 0, fmt.Errorf("adapter: %s: need a 2-D matrix, have shape %v", role, t.Shape)
	}
	return t.Shape[0], t.Shape[1], nil
}

// gemm computes C[m×n] = op(A)·op(B) in float32 with blas32 (C is
// overwritten). A is m×k (k×m when transA) with leading dimension lda, B is
// k×n (n×k when transB) with leading dimension ldb.
func gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	blas32.Implementation().Sgemm(ta, tb, m, n, k, 1, a, max(lda, 1), b, max(ldb, 1), 0, c, max(ldc, 1))
}

// matmul returns the m×n product of row-major a (m×k) and b (k×n).
func matmul(a []float32, m, k int, b []float32, n int) []float32 {
	c := make([]float32, m*n)
	gemm(false, false, m, n, k, a, k, b, n, c, n)
	return c
}

// broadcastShape returns the NumPy/torch broadcast of two shapes.
func broadcastShape(a, b []int) ([]int, bool) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, false
		}
	}
	return out, true
}

// expandTo materialises src broadcast to shape (which must be a valid
// broadcast target of src.Shape, i.e. broadcastShape(src, shape) == shape).
func expandTo(src []float32, srcShape, shape []int) ([]float32, bool) {
	bs, ok := broadcastShape(srcShape, shape)
	if !ok || !sameShape(bs, shape) {
		return nil, false
	}
	n, ok := shapeNumel(shape)
	if !ok {
		return nil, false
	}
	out := make([]float32, n)
	if n == 0 {
		return out, true
	}
	nd := len(shape)
	// Source strides aligned to the right, 0 where broadcast.
	strides := make([]int, nd)
	st := 1
	for i := len(srcShape) - 1; i >= 0; i-- {
		j := nd - len(srcShape) + i
		if srcShape[i] != 1 {
			strides[j] = st
		}
		st *= srcShape[i]
	}
	idx := make([]int, nd)
	off := 0
	for p := 0; p < n; p++ {
		out[p] = src[off]
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			off += strides[d]
			if idx[d] < shape[d] {
				break
			}
			off -= strides[d] * idx[d]
			idx[d] = 0
		}
	}
	return out, true
}
