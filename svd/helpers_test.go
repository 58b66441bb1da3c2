package svd

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// knownMatrix returns the rows×cols float64 matrix H1·H2·diag(sigma)·H3·H4
// (row-major), where the H are random Householder reflections. Its singular
// values are exactly |sigma| (padded with zeros).
func knownMatrix(rng *rand.Rand, rows, cols int, sigma []float64) []float64 {
	a := make([]float64, rows*cols)
	for i, s := range sigma {
		a[i*cols+i] = s
	}
	for range 2 {
		// Left: A = (I - 2vvᵀ/vᵀv) A.
		v := randVec(rng, rows)
		w := make([]float64, cols) // vᵀA
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				w[j] += v[i] * a[i*cols+j]
			}
		}
		for i := 0; i < rows; i++ {
			f := 2 * v[i]
			for j := 0; j < cols; j++ {
				a[i*cols+j] -= f * w[j]
			}
		}
		// Right: A = A (I - 2uuᵀ/uᵀu).
		u := randVec(rng, cols)
		for i := 0; i < rows; i++ {
			row := a[i*cols : (i+1)*cols]
			var d float64
			for j, x := range row {
				d += x * u[j]
			}
			for j := range row {
				row[j] -= 2 * d * u[j]
			}
		}
	}
	return a
}

// randVec returns a random unit vector.
func randVec(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	var s float64
	for i := range v {
		v[i] = rng.NormFloat64()
		s += v[i] * v[i]
	}
	s = math.Sqrt(s)
	for i := range v {
		v[i] /= s
	}
	return v
}

// orthoCols returns an n×k matrix with orthonormal columns: the first k
// columns of a product of two random Householder reflections.
func orthoCols(rng *rand.Rand, n, k int) []float64 {
	ones := make([]float64, k)
	for i := range ones {
		ones[i] = 1
	}
	return knownMatrix(rng, n, k, ones)
}

func to32(a []float64, rows, cols int) Dense {
	d := Dense{Rows: rows, Cols: cols, Data: make([]float32, len(a))}
	for i, v := range a {
		d.Data[i] = float32(v)
	}
	return d
}

func randDense(rng *rand.Rand, rows, cols int) Dense {
	d := Dense{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	for i := range d.Data {
		d.Data[i] = float32(rng.NormFloat64())
	}
	return d
}

// lowRankNoise: 32 signal values linearly from 2.0 to 1.06, then a noise
// floor 0.05·sqrt(1 − i/n), n values in total.
func lowRankNoise(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		if i < 32 {
			s[i] = 2.0 - (2.0-1.06)*float64(i)/31
		} else {
			s[i] = 0.05 * math.Sqrt(1-float64(i)/float64(n))
		}
	}
	return s
}

// powerLaw: s_i = i^-0.75, i = 1..n.
func powerLaw(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.Pow(float64(i+1), -0.75)
	}
	return s
}

// optimalRelErr is sqrt(Σ_{i>=k} σ_i² / Σ σ_i²) computed directly.
func optimalRelErr(sigma []float64, k int) float64 {
	var head, tail float64
	for i, s := range sigma {
		if i < k {
			head += s * s
		} else {
			tail += s * s
		}
	}
	return math.Sqrt(tail / (head + tail))
}

// reconRelErr returns ‖A − U diag(S) Vt‖_F / ‖A‖_F in float64 for the first
// k triplets of r.
func reconRelErr(a Dense, r Result, k int) float64 {
	var num, den float64
	n := a.Cols
	row := make([]float64, n)
	for i := 0; i < a.Rows; i++ {
		for j := range row {
			row[j] = 0
		}
		for t := 0; t < k; t++ {
			f := float64(r.U.Data[i*r.U.Cols+t]) * float64(r.S[t])
			vt := r.Vt.Data[t*n : (t+1)*n]
			for j, v := range vt {
				row[j] += f * float64(v)
			}
		}
		for j, v := range a.Data[i*n : (i+1)*n] {
			d := float64(v) - row[j]
			num += d * d
			den += float64(v) * float64(v)
		}
	}
	return math.Sqrt(num / den)
}

// orthoDefect returns max |(XᵀX − I)_ij| for the columns (cols=true) or
// rows of the row-major d.
func orthoDefect(d Dense, cols bool) float64 {
	rows, n := d.Rows, d.Cols
	at := func(i, j int) float64 { return float64(d.Data[i*n+j]) }
	k, len_ := n, rows
	if !cols {
		k, len_ = rows, n
		at = func(i, j int) float64 { return float64(d.Data[j*n+i]) }
	}
	var worst float64
	for p := 0; p < k; p++ {
		for q := p; q < k; q++ {
			var s float64
			for i := 0; i < len_; i++ {
				s += at(i, p) * at(i, q)
			}
			if p == q {
				s -= 1
			}
			worst = math.Max(worst, math.Abs(s))
		}
	}
	return worst
}

// refSVD is gonum's float64 SVD of a row-major float64 matrix (the
// independent reference).
func refSVD(t *testing.T, a []float64, rows, cols int) (s []float64, u, v *mat.Dense) {
	t.Helper()
	var dec mat.SVD
	if !dec.Factorize(mat.NewDense(rows, cols, append([]float64(nil), a...)), mat.SVDThin) {
		t.Fatal("reference SVD failed")
	}
	u, v = new(mat.Dense), new(mat.Dense)
	dec.UTo(u)
	dec.VTo(v)
	return dec.Values(nil), u, v
}

// product64 forms up@down in float64 from the float32 factors.
func product64(up, down Dense) []float64 {
	m, r, n := up.Rows, up.Cols, down.Cols
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for t := 0; t < r; t++ {
			f := float64(up.Data[i*r+t])
			for j := 0; j < n; j++ {
				out[i*n+j] += f * float64(down.Data[t*n+j])
			}
		}
	}
	return out
}
