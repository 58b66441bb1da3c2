package svd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPanelProducts checks the SIMD products against float64 loops on
// shapes that exercise every edge: rows not a multiple of 4, l not a
// multiple of 16, inner dimensions shorter and longer than the block.
func TestPanelProducts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sh := range []struct{ rows, cols, l int }{
		{1, 1, 1}, {4, 16, 16}, {5, 3, 17}, {13, 300, 42}, {64, 700, 42}, {257, 513, 7}, {3, 1000, 48},
	} {
		A := make([]float32, sh.rows*sh.cols)
		for i := range A {
			A[i] = float32(r.NormFloat64())
		}
		B := make([]float32, sh.cols*sh.l)
		for i := range B {
			B[i] = float32(r.NormFloat64())
		}
		Q := make([]float32, sh.rows*sh.l)
		for i := range Q {
			Q[i] = float32(r.NormFloat64())
		}
		C := make([]float32, sh.rows*sh.l)
		mulNN(A, sh.rows, sh.cols, B, sh.l, C)
		for i := 0; i < sh.rows; i++ {
			for j := 0; j < sh.l; j++ {
				var want, mag float64
				for k := 0; k < sh.cols; k++ {
					p := float64(A[i*sh.cols+k]) * float64(B[k*sh.l+j])
					want += p
					mag += math.Abs(p)
				}
				if d := math.Abs(float64(C[i*sh.l+j]) - want); d > 1e-5*mag+1e-6 {
					t.Fatalf("NN %v: C[%d][%d] = %g, want %g", sh, i, j, C[i*sh.l+j], want)
				}
			}
		}
		Z := make([]float32, sh.cols*sh.l)
		mulTN(A, sh.rows, sh.cols, Q, sh.l, Z)
		for i := 0; i < sh.cols; i++ {
			for j := 0; j < sh.l; j++ {
				var want, mag float64
				for k := 0; k < sh.rows; k++ {
					p := float64(A[k*sh.cols+i]) * float64(Q[k*sh.l+j])
					want += p
					mag += math.Abs(p)
				}
				if d := math.Abs(float64(Z[i*sh.l+j]) - want); d > 1e-5*mag+1e-6 {
					t.Fatalf("TN %v: Z[%d][%d] = %g, want %g", sh, i, j, Z[i*sh.l+j], want)
				}
			}
		}
	}
}

func BenchmarkPanelNN(b *testing.B) {
	rows, cols, l := 1280, 1280, 42
	A := make([]float32, rows*cols)
	B := make([]float32, cols*l)
	C := make([]float32, rows*l)
	for i := range A {
		A[i] = float32(i%7) - 3
	}
	b.SetBytes(int64(4 * len(A)))
	for b.Loop() {
		mulNN(A, rows, cols, B, l, C)
	}
	b.ReportMetric(2*float64(rows*cols*l)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkPanelTN(b *testing.B) {
	rows, cols, l := 1280, 1280, 42
	A := make([]float32, rows*cols)
	Q := make([]float32, rows*l)
	Z := make([]float32, cols*l)
	b.SetBytes(int64(4 * len(A)))
	for b.Loop() {
		mulTN(A, rows, cols, Q, l, Z)
	}
	b.ReportMetric(2*float64(rows*cols*l)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
