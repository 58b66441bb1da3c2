package svd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestExactKnownSpectrum(t *testing.T) {
	cases := []struct {
		rows, cols int
		sigma      []float64 // padded with zeros to min(rows, cols)
	}{
		{7, 5, []float64{5, 4, 3, 2, 1}},
		{5, 7, []float64{5, 4, 3, 2, 1}},
		{6, 6, []float64{3, 3, 3, 1, 1, 0.5}}, // repeated values
		{9, 4, []float64{2, 1}},               // rank 2 of 4
		{1, 5, []float64{3}},                  // single row
		{40, 30, powerLaw(30)},
		{30, 40, lowRankNoise(30)},
		{12, 10, nil}, // zero matrix
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%dx%d", c.rows, c.cols), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			p := min(c.rows, c.cols)
			want := make([]float64, p)
			copy(want, c.sigma)
			a := to32(knownMatrix(rng, c.rows, c.cols, want), c.rows, c.cols)
			r, err := Exact(a)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.S) != p || r.U.Rows != c.rows || r.U.Cols != p || r.Vt.Rows != p || r.Vt.Cols != c.cols {
				t.Fatalf("shapes: S %d, U %dx%d, Vt %dx%d", len(r.S), r.U.Rows, r.U.Cols, r.Vt.Rows, r.Vt.Cols)
			}
			var total float64
			for _, s := range want {
				total += s * s
			}
			scale := math.Max(want[0], 1e-30)
			for j := range want {
				if d := math.Abs(float64(r.S[j]) - want[j]); d > 1e-6*scale {
					t.Errorf("S[%d] = %g, want %g", j, r.S[j], want[j])
				}
			}
			if d := math.Abs(r.TotalFro2 - total); d > 1e-6*math.Max(total, 1e-30) {
				t.Errorf("TotalFro2 = %g, want %g", r.TotalFro2, total)
			}
			if total == 0 {
				return
			}
			if e := reconRelErr(a, r, p); e > 1e-6 {
				t.Errorf("full reconstruction rel err %g", e)
			}
			if d := orthoDefect(r.U, true); d > 1e-6 {
				t.Errorf("U not orthonormal: %g", d)
			}
			if d := orthoDefect(r.Vt, false); d > 1e-6 {
				t.Errorf("Vt not orthonormal: %g", d)
			}
		})
	}
}

func TestFactorsSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	sigma := []float64{9, 4, 1, 0.25, 0.0625}
	a := to32(knownMatrix(rng, 8, 6, sigma), 8, 6)
	r, err := Exact(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		split string
		k     int
		// expected squared column norms of up and row norms of down
		upNorm2, downNorm2 func(s float64) float64
	}{
		{SplitUp, 3, func(s float64) float64 { return s * s }, func(float64) float64 { return 1 }},
		{"", 2, func(s float64) float64 { return s * s }, func(float64) float64 { return 1 }},
		{SplitSqrt, 3, func(s float64) float64 { return s }, func(s float64) float64 { return s }},
		{SplitSqrt, 99, func(s float64) float64 { return s }, func(s float64) float64 { return s }}, // k clamped to 6
	} {
		t.Run(fmt.Sprintf("%q/k%d", c.split, c.k), func(t *testing.T) {
			up, down := r.Factors(c.k, c.split)
			k := min(c.k, len(r.S))
			if up.Rows != 8 || up.Cols != k || down.Rows != k || down.Cols != 6 {
				t.Fatalf("shapes up %dx%d down %dx%d", up.Rows, up.Cols, down.Rows, down.Cols)
			}
			full := append(append([]float64(nil), sigma...), 0)
			for j := 0; j < k; j++ {
				var nu, nd float64
				for i := 0; i < up.Rows; i++ {
					nu += float64(up.Data[i*k+j]) * float64(up.Data[i*k+j])
				}
				for i := 0; i < down.Cols; i++ {
					nd += float64(down.Data[j*6+i]) * float64(down.Data[j*6+i])
				}
				if w := c.upNorm2(full[j]); math.Abs(nu-w) > 1e-5*math.Max(1, w) {
					t.Errorf("up column %d squared norm %g, want %g", j, nu, w)
				}
				if full[j] > 0 {
					if w := c.downNorm2(full[j]); math.Abs(nd-w) > 1e-5*math.Max(1, w) {
						t.Errorf("down row %d squared norm %g, want %g", j, nd, w)
					}
				}
			}
			// up@down is the rank-k truncation: its error is optimal.
			prod := product64(up, down)
			var num, den float64
			for i, v := range a.Data {
				d := float64(v) - prod[i]
				num += d * d
				den += float64(v) * float64(v)
			}
			if e, opt := math.Sqrt(num/den), optimalRelErr(full, k); math.Abs(e-opt) > 1e-5 {
				t.Errorf("rel err %g, want optimal %g", e, opt)
			}
		})
	}
	for _, bad := range []struct {
		split string
		k     int
	}{{"down", 2}, {"SQRT", 2}, {SplitUp, 0}, {SplitUp, -3}} {
		up, down := r.Factors(bad.k, bad.split)
		if up.Rows != 0 || up.Cols != 0 || down.Rows != 0 || len(up.Data)+len(down.Data) != 0 {
			t.Errorf("Factors(%d, %q) = non-empty", bad.k, bad.split)
		}
	}
	if CheckSplit("down") == nil || CheckSplit(SplitSqrt) != nil || CheckSplit("") != nil {
		t.Error("CheckSplit")
	}
	// A zero Result must not panic.
	if up, _ := (Result{}).Factors(3, SplitUp); up.Rows != 0 {
		t.Error("zero Result gave factors")
	}
}
