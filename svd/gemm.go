package svd

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The randomized SVD's cost is its products of the big matrix A with thin
// matrices (l = k+p columns): Y = A·Ω and Z = Aᵀ·Q, 2q+2 passes over A.
// On amd64 with AVX2/FMA they run on a 4×16 register-blocked micro-kernel
// (about five times gonum's pure-Go Sgemm here); elsewhere on gonum.

const (
	kernRows = 4   // rows of C per kernel call
	kernCols = 16  // columns of C per kernel call
	tChunk   = 256 // inner-dimension block: keeps A's and B's panels in cache
)

// mulNN sets C (rows×l) = A (rows×cols) · B (cols×l), all row-major.
func mulNN(A []float32, rows, cols int, B []float32, l int, C []float32) {
	if !haveKernel {
		blas32.Implementation().Sgemm(blas.NoTrans, blas.NoTrans, rows, l, cols, 1, A, cols, B, l, 0, C, l)
		return
	}
	panel(A, 1, cols, rows, cols, B, l, C)
}

// mulTN sets C (cols×l) = Aᵀ · B, with A rows×cols and B rows×l.
func mulTN(A []float32, rows, cols int, B []float32, l int, C []float32) {
	if !haveKernel {
		blas32.Implementation().Sgemm(blas.Trans, blas.NoTrans, cols, l, rows, 1, A, cols, B, l, 0, C, l)
		return
	}
	panel(A, cols, 1, cols, rows, B, l, C)
}

// panel computes C[i][j] = Σ_{t<T} A[t·sT + i·sI] · B[t·l + j] for
// i < I, j < l. B and C are copied into column-padded buffers (multiples
// of 16) so the kernel never reads or writes past a row.
func panel(A []float32, sT, sI, I, T int, B []float32, l int, C []float32) {
	lp := (l + kernCols - 1) / kernCols * kernCols
	bp := make([]float32, T*lp)
	for t := 0; t < T; t++ {
		copy(bp[t*lp:t*lp+l], B[t*l:t*l+l])
	}
	cp := make([]float32, I*lp)
	const f = 4 // bytes per float32
	iFull := I / kernRows * kernRows
	for t0 := 0; t0 < T; t0 += tChunk {
		n := min(tChunk, T-t0)
		for i := 0; i < iFull; i += kernRows {
			// the kernel reads A[(t0+t)·sT + (i+r)·sI] for t < n, r < 4
			last := (t0+n-1)*sT + (i+kernRows-1)*sI
			_ = A[last]
			a := &A[t0*sT+i*sI]
			for j := 0; j < lp; j += kernCols {
				kern4x16(a, uintptr(sT*f), uintptr(sI*f), &bp[t0*lp+j], uintptr(lp*f), n, &cp[i*lp+j], uintptr(lp*f))
			}
		}
		// leftover rows of C (I not a multiple of 4)
		for i := iFull; i < I; i++ {
			row := cp[i*lp : i*lp+lp]
			for t := t0; t < t0+n; t++ {
				av := A[t*sT+i*sI]
				br := bp[t*lp : t*lp+lp]
				for j := range row {
					row[j] += av * br[j]
				}
			}
		}
	}
	for i := 0; i < I; i++ {
		copy(C[i*l:i*l+l], cp[i*lp:i*lp+l])
	}
}
