package svd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// knownFactors returns Up = Q1·diag(sigma) (rows×r) and Down = Q2ᵀ (r×cols)
// with orthonormal Q1, Q2, so Up@Down has exactly the singular values sigma.
func knownFactors(rng *rand.Rand, rows, cols int, sigma []float64) Factored {
	r := len(sigma)
	q1 := orthoCols(rng, rows, r)
	q2 := orthoCols(rng, cols, r)
	up := make([]float64, rows*r)
	for i := 0; i < rows; i++ {
		for j := 0; j < r; j++ {
			up[i*r+j] = q1[i*r+j] * sigma[j]
		}
	}
	down := make([]float64, r*cols)
	for i := 0; i < cols; i++ {
		for j := 0; j < r; j++ {
			down[j*cols+i] = q2[i*r+j]
		}
	}
	return Factored{Up: to32(up, rows, r), Down: to32(down, r, cols)}
}

func TestFromFactorsKnownSpectrum(t *testing.T) {
	cases := []struct {
		rows, cols, k int
		sigma         []float64
	}{
		{1280, 1280, 8, powerLaw(32)},
		{320, 768, 4, []float64{8, 6, 4, 2, 1, 0.5, 0.25, 0.125}},
		{768, 320, 16, lowRankNoise(16)},
		{64, 64, 16, []float64{5, 5, 5, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, // rank 6 of r=16
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%dx%d/r%d/k%d", c.rows, c.cols, len(c.sigma), c.k), func(t *testing.T) {
			f := knownFactors(rand.New(rand.NewPCG(uint64(i), 21)), c.rows, c.cols, c.sigma)
			var total float64
			for _, s := range c.sigma {
				total += s * s
			}
			spec, err := Spectrum(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(spec) != len(c.sigma) {
				t.Fatalf("Spectrum has %d values, want %d", len(spec), len(c.sigma))
			}
			for j, s := range spec {
				if math.Abs(s-c.sigma[j]) > 1e-6*c.sigma[0] {
					t.Errorf("Spectrum[%d] = %g, want %g", j, s, c.sigma[j])
				}
			}
			r, err := FromFactors(f, c.k)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.S) != c.k || r.U.Rows != c.rows || r.U.Cols != c.k || r.Vt.Rows != c.k || r.Vt.Cols != c.cols {
				t.Fatalf("shapes: S %d, U %dx%d, Vt %dx%d", len(r.S), r.U.Rows, r.U.Cols, r.Vt.Rows, r.Vt.Cols)
			}
			for j, s := range r.S {
				if math.Abs(float64(s)-c.sigma[j]) > 1e-6*c.sigma[0] {
					t.Errorf("S[%d] = %g, want %g", j, s, c.sigma[j])
				}
			}
			if d := math.Abs(r.TotalFro2-total) / total; d > 1e-6 {
				t.Errorf("TotalFro2 = %g, want %g", r.TotalFro2, total)
			}
			if d := orthoDefect(r.U, true); d > 1e-5 {
				t.Errorf("U not orthonormal: %g", d)
			}
			if d := orthoDefect(r.Vt, false); d > 1e-5 {
				t.Errorf("Vt not orthonormal: %g", d)
			}
			m := to32(product64(f.Up, f.Down), c.rows, c.cols)
			if e, opt := reconRelErr(m, r, c.k), optimalRelErr(c.sigma, c.k); math.Abs(e-opt) > 1e-5 {
				t.Errorf("rank-%d rel err %g, want optimal %g", c.k, e, opt)
			}
		})
	}
}

// subspaceDefect returns k − ‖Aᵀ B‖_F² for two Rows×k orthonormal bases
// (zero iff they span the same subspace). a is float32 row-major with
// stride k; b is a gonum matrix whose first k columns are used.
func subspaceDefect(a Dense, b *mat.Dense, k int) float64 {
	var s float64
	for p := 0; p < k; p++ {
		for q := 0; q < k; q++ {
			var d float64
			for i := 0; i < a.Rows; i++ {
				d += float64(a.Data[i*a.Cols+p]) * b.At(i, q)
			}
			s += d * d
		}
	}
	return float64(k) - s
}

func TestFromFactorsRandomVsDense(t *testing.T) {
	cases := []struct {
		name          string
		rows, r, cols int
		k             int
		dup           int // number of Up columns made copies of earlier ones (rank deficiency)
	}{
		{"lora 320x16x768", 320, 16, 768, 8, 0},
		{"lora 400x32x300", 400, 32, 300, 4, 0},
		{"rank-deficient up", 200, 12, 150, 6, 5},
		{"r > rows", 6, 10, 40, 3, 0},
		{"r > cols", 40, 10, 6, 3, 0},
		{"r > both", 5, 9, 4, 2, 0},
		{"k beyond rank", 30, 4, 20, 9, 0},
		{"r = 1", 30, 1, 20, 1, 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 33))
			f := Factored{Up: randDense(rng, c.rows, c.r), Down: randDense(rng, c.r, c.cols)}
			for d := 0; d < c.dup; d++ {
				src, dst := d, c.r-1-d
				for row := 0; row < c.rows; row++ {
					f.Up.Data[row*c.r+dst] = f.Up.Data[row*c.r+src]
				}
			}
			// Independent reference: gonum SVD of the float64 product.
			m64 := product64(f.Up, f.Down)
			want, wu, wv := refSVD(t, m64, c.rows, c.cols)
			p := min(c.rows, c.cols, c.r)
			rank := min(p, c.r-c.dup)

			spec, err := Spectrum(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(spec) != p {
				t.Fatalf("Spectrum has %d values, want %d", len(spec), p)
			}
			for j := range spec {
				if math.Abs(spec[j]-want[j]) > 1e-10*want[0] {
					t.Errorf("Spectrum[%d] = %.12g, want %.12g", j, spec[j], want[j])
				}
				if j >= rank && spec[j] > 1e-10*want[0] {
					t.Errorf("Spectrum[%d] = %g, want 0 (rank %d)", j, spec[j], rank)
				}
			}

			r, err := FromFactors(f, c.k)
			if err != nil {
				t.Fatal(err)
			}
			k := min(c.k, p)
			if len(r.S) != k {
				t.Fatalf("%d values, want %d", len(r.S), k)
			}
			var total float64
			for _, v := range m64 {
				total += v * v
			}
			if d := math.Abs(r.TotalFro2-total) / total; d > 1e-10 {
				t.Errorf("TotalFro2 = %g, want %g", r.TotalFro2, total)
			}
			for j := range r.S {
				if math.Abs(float64(r.S[j])-want[j]) > 1e-6*want[0] {
					t.Errorf("S[%d] = %g, want %g", j, r.S[j], want[j])
				}
			}
			// Same leading subspaces as the reference (the random spectra have
			// gaps; skip the null space of rank-deficient products).
			ks := min(k, rank)
			if d := subspaceDefect(r.U, wu, ks); math.Abs(d) > 1e-5 {
				t.Errorf("left subspace defect %g", d)
			}
			vt := Dense{Rows: c.cols, Cols: k, Data: make([]float32, c.cols*k)}
			for j := 0; j < k; j++ {
				for col := 0; col < c.cols; col++ {
					vt.Data[col*k+j] = r.Vt.Data[j*c.cols+col]
				}
			}
			if d := subspaceDefect(vt, wv, ks); math.Abs(d) > 1e-5 {
				t.Errorf("right subspace defect %g", d)
			}
			m := to32(m64, c.rows, c.cols)
			if e, opt := reconRelErr(m, r, k), optimalRelErr(want, k); math.Abs(e-opt) > 1e-5 {
				t.Errorf("rank-%d rel err %g, want optimal %g", k, e, opt)
			}
			// Exact on the dense product agrees too.
			ex, err := Exact(m)
			if err != nil {
				t.Fatal(err)
			}
			for j := range r.S {
				if math.Abs(float64(r.S[j]-ex.S[j])) > 1e-5*float64(ex.S[0]) {
					t.Errorf("FromFactors S[%d] = %g, Exact %g", j, r.S[j], ex.S[j])
				}
			}
		})
	}
}

func TestFromFactorsZeroAndBadInput(t *testing.T) {
	zero := Factored{
		Up:   Dense{Rows: 20, Cols: 4, Data: make([]float32, 80)},
		Down: Dense{Rows: 4, Cols: 10, Data: make([]float32, 40)},
	}
	r, err := FromFactors(zero, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalFro2 != 0 || len(r.S) != 2 || r.S[0] != 0 || r.S[1] != 0 {
		t.Errorf("zero factors: TotalFro2 %g, S %v", r.TotalFro2, r.S)
	}
	for _, v := range append(r.U.Data, r.Vt.Data...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite singular vector entry")
		}
	}
	s, err := Spectrum(zero)
	if err != nil || len(s) != 4 {
		t.Fatalf("Spectrum(zero) = %v, %v", s, err)
	}

	ok := func(rows, cols int) Dense { return Dense{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)} }
	nan := ok(3, 2)
	nan.Data[1] = float32(math.NaN())
	bad := []struct {
		name string
		f    Factored
		k    int
	}{
		{"inner mismatch", Factored{ok(5, 3), ok(2, 4)}, 1},
		{"empty up", Factored{Dense{}, ok(2, 4)}, 1},
		{"empty down", Factored{ok(5, 2), Dense{Rows: 2}}, 1},
		{"short data", Factored{Dense{Rows: 5, Cols: 2, Data: make([]float32, 9)}, ok(2, 4)}, 1},
		{"NaN", Factored{nan, ok(2, 4)}, 1},
		{"k = 0", Factored{ok(5, 2), ok(2, 4)}, 0},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := FromFactors(c.f, c.k); err == nil {
				t.Error("FromFactors: no error")
			}
			if c.k > 0 {
				if _, err := Spectrum(c.f); err == nil {
					t.Error("Spectrum: no error")
				}
			}
		})
	}
}
