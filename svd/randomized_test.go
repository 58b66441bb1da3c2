package svd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

func TestRandomizedKnownSpectrum(t *testing.T) {
	type tc struct {
		rows, cols, k int
		spectrum      string
		long          bool
	}
	var cases []tc
	for _, sz := range [][3]int{{200, 150, 0}, {320, 768, 0}, {1280, 640, 0}, {3072, 768, 1}} {
		// Rank-32 signal + noise: k = 32 captures the signal exactly.
		cases = append(cases, tc{sz[0], sz[1], 32, "lowrank32+noise", sz[2] == 1})
		// Slowly decaying power law, the hard case for sketching.
		cases = append(cases, tc{sz[0], sz[1], 16, "powerlaw", sz[2] == 1})
		cases = append(cases, tc{sz[0], sz[1], 32, "powerlaw", sz[2] == 1})
	}
	for i, c := range cases {
		name := fmt.Sprintf("%dx%d/k%d/%s", c.rows, c.cols, c.k, c.spectrum)
		t.Run(name, func(t *testing.T) {
			if c.long && testing.Short() {
				t.Skip("large matrix skipped in -short mode")
			}
			n := min(c.rows, c.cols)
			var sigma []float64
			if c.spectrum == "powerlaw" {
				sigma = powerLaw(n)
			} else {
				sigma = lowRankNoise(n)
			}
			rng := rand.New(rand.NewPCG(uint64(i)+1, 7))
			a := to32(knownMatrix(rng, c.rows, c.cols, sigma), c.rows, c.cols)

			res, err := Randomized(a, c.k, Options{Seed: 42})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.S) != c.k || res.U.Rows != c.rows || res.U.Cols != c.k ||
				res.Vt.Rows != c.k || res.Vt.Cols != c.cols {
				t.Fatalf("shapes: S %d, U %dx%d, Vt %dx%d", len(res.S), res.U.Rows, res.U.Cols, res.Vt.Rows, res.Vt.Cols)
			}
			var total float64
			for _, s := range sigma {
				total += s * s
			}
			if d := math.Abs(res.TotalFro2-total) / total; d > 1e-6 {
				t.Errorf("TotalFro2 = %g, want %g (rel %g)", res.TotalFro2, total, d)
			}
			// Top quarter of the singular values to 1e-3 relative, all k to
			// 5e-2 (the last few of a slowly decaying spectrum are the least
			// accurate in a randomized SVD). Since B = QᵀA, the estimates
			// can never exceed the true values (interlacing).
			var worstTop, worstAll float64
			for j := 0; j < c.k; j++ {
				rel := math.Abs(float64(res.S[j])-sigma[j]) / sigma[j]
				if j < c.k/4 {
					worstTop = math.Max(worstTop, rel)
				}
				worstAll = math.Max(worstAll, rel)
				if float64(res.S[j]) > sigma[j]*(1+1e-5) {
					t.Errorf("S[%d] = %g exceeds the true %g", j, res.S[j], sigma[j])
				}
				if j > 0 && res.S[j] > res.S[j-1] {
					t.Errorf("S not descending at %d", j)
				}
			}
			if worstTop > 1e-3 || worstAll > 5e-2 {
				t.Errorf("singular values: worst rel err top quarter %.2e (want <= 1e-3), all %.2e (want <= 5e-2)", worstTop, worstAll)
			}
			if d := orthoDefect(res.U, true); d > 1e-5 {
				t.Errorf("U not orthonormal: %g", d)
			}
			if d := orthoDefect(res.Vt, false); d > 1e-5 {
				t.Errorf("Vt not orthonormal: %g", d)
			}
			got := reconRelErr(a, res, c.k)
			opt := optimalRelErr(sigma, c.k)
			t.Logf("rel err %.6f, optimal %.6f, ratio %.5f; sv worst rel err top %.1e all %.1e",
				got, opt, got/opt, worstTop, worstAll)
			if got > 1.01*opt {
				t.Errorf("rank-%d rel error %.6f > 1.01 × optimal %.6f", c.k, got, opt)
			}
		})
	}
}

func TestRandomizedDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	sigma := powerLaw(300)
	a := to32(knownMatrix(rng, 400, 300, sigma), 400, 300)
	run := func(seed uint64, procs int) Result {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		r, err := Randomized(a, 20, Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	same := func(x, y Result) bool {
		eq := func(p, q []float32) bool {
			if len(p) != len(q) {
				return false
			}
			for i := range p {
				if math.Float32bits(p[i]) != math.Float32bits(q[i]) {
					return false
				}
			}
			return true
		}
		return eq(x.S, y.S) && eq(x.U.Data, y.U.Data) && eq(x.Vt.Data, y.Vt.Data) && x.TotalFro2 == y.TotalFro2
	}
	r1 := run(7, 2)
	if !same(r1, run(7, 2)) {
		t.Error("same seed gave different results")
	}
	if !same(r1, run(7, 1)) {
		t.Error("same seed gave different results with GOMAXPROCS=1")
	}
	r2 := run(8, 2)
	if same(r1, r2) {
		t.Error("different seeds gave bitwise identical results")
	}
	// Both seeds are accurate.
	opt := optimalRelErr(sigma, 20)
	for _, r := range []Result{r1, r2} {
		if e := reconRelErr(a, r, 20); e > 1.01*opt {
			t.Errorf("rel err %g > 1.01 × optimal %g", e, opt)
		}
	}
}

func TestRandomizedOptionsAndFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	sigma := []float64{9, 7, 5, 3, 2, 1, 0.5, 0.25, 0.125, 0.0625, 0.03, 0.01}
	a := to32(knownMatrix(rng, 30, 12, sigma), 30, 12)
	cases := []struct {
		name  string
		k     int
		opt   Options
		wantK int
	}{
		{"k+p >= min dim falls back to exact", 4, Options{}, 4},
		{"k = min dim", 12, Options{}, 12},
		{"k > min dim is clamped", 50, Options{}, 12},
		{"no oversampling, no power iterations", 3, Options{Oversample: -1, PowerIters: -1}, 3},
		{"small p, randomized path", 2, Options{Oversample: 3}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Randomized(a, c.k, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.S) != c.wantK || r.U.Cols != c.wantK || r.Vt.Rows != c.wantK {
				t.Fatalf("got %d values, U cols %d, Vt rows %d; want %d", len(r.S), r.U.Cols, r.Vt.Rows, c.wantK)
			}
			// Estimates never exceed the true values; with q=0, p=0 that
			// is all that is guaranteed, otherwise they are accurate.
			for j, s := range r.S {
				if float64(s) > sigma[j]*(1+1e-5) {
					t.Errorf("S[%d] = %g exceeds the true %g", j, s, sigma[j])
				}
				if rel := math.Abs(float64(s)-sigma[j]) / sigma[j]; c.opt.Oversample >= 0 && rel > 1e-4 {
					t.Errorf("S[%d] = %g, want %g", j, s, sigma[j])
				}
			}
		})
	}
}

func TestRandomizedZeroAndBadInput(t *testing.T) {
	zero := Dense{Rows: 100, Cols: 80, Data: make([]float32, 8000)}
	for _, k := range []int{4, 80} {
		r, err := Randomized(zero, k, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.TotalFro2 != 0 || len(r.S) != k {
			t.Fatalf("zero matrix: TotalFro2 %g, %d values", r.TotalFro2, len(r.S))
		}
		for _, s := range r.S {
			if s != 0 {
				t.Errorf("zero matrix: singular value %g", s)
			}
		}
		for _, v := range r.U.Data {
			if math.IsNaN(float64(v)) {
				t.Fatal("NaN in U")
			}
		}
		if got := r.RetainedTotal(k); got != 1 {
			t.Errorf("RetainedTotal of zero matrix = %g, want 1", got)
		}
	}
	nan := Dense{Rows: 3, Cols: 3, Data: make([]float32, 9)}
	nan.Data[4] = float32(math.NaN())
	inf := Dense{Rows: 3, Cols: 3, Data: make([]float32, 9)}
	inf.Data[0] = float32(math.Inf(-1))
	bad := []struct {
		name string
		m    Dense
		k    int
	}{
		{"empty", Dense{}, 1},
		{"negative rows", Dense{Rows: -1, Cols: 3, Data: nil}, 1},
		{"short data", Dense{Rows: 3, Cols: 3, Data: make([]float32, 8)}, 1},
		{"long data", Dense{Rows: 3, Cols: 3, Data: make([]float32, 10)}, 1},
		{"NaN", nan, 1},
		{"Inf", inf, 1},
		{"k = 0", Dense{Rows: 3, Cols: 3, Data: make([]float32, 9)}, 0},
		{"huge shape", Dense{Rows: 1 << 40, Cols: 1 << 40}, 1},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Randomized(c.m, c.k, Options{}); err == nil {
				t.Error("Randomized: no error")
			}
			if c.k > 0 {
				if _, err := Exact(c.m); err == nil {
					t.Error("Exact: no error")
				}
			}
		})
	}
}
