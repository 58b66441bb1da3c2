package extract

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// orthonormal returns an m×p matrix (row-major, float64) with orthonormal
// columns: Gaussian columns through modified Gram–Schmidt, twice.
func orthonormal(m, p int, rng *rand.Rand) []float64 {
	q := make([]float64, m*p)
	for i := range q {
		q[i] = rng.NormFloat64()
	}
	for pass := 0; pass < 2; pass++ {
		for j := 0; j < p; j++ {
			for c := 0; c < j; c++ {
				var dot float64
				for i := 0; i < m; i++ {
					dot += q[i*p+j] * q[i*p+c]
				}
				for i := 0; i < m; i++ {
					q[i*p+j] -= dot * q[i*p+c]
				}
			}
			var n float64
			for i := 0; i < m; i++ {
				n += q[i*p+j] * q[i*p+j]
			}
			n = math.Sqrt(n)
			for i := 0; i < m; i++ {
				q[i*p+j] /= n
			}
		}
	}
	return q
}

// knownDelta builds rows×cols U·diag(sigma)·Vᵀ in float64 with random
// orthonormal U (rows×p) and V (cols×p), p = len(sigma) <= min(rows, cols):
// a matrix whose singular values are exactly sigma.
func knownDelta(rows, cols int, sigma []float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	p := len(sigma)
	u := orthonormal(rows, p, rng)
	v := orthonormal(cols, p, rng)
	d := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			var s float64
			for c := 0; c < p; c++ {
				s += u[i*p+c] * sigma[c] * v[j*p+c]
			}
			d[i*cols+j] = s
		}
	}
	return d
}

// signalPlusNoise is a spectrum of p values: the given signal values, then
// a decaying floor of the given height.
func signalPlusNoise(p int, signal []float64, floor float64) []float64 {
	s := append([]float64{}, signal...)
	for i := len(signal); i < p; i++ {
		s = append(s, floor*(1-float64(i)/float64(p)))
	}
	return s[:p]
}

// optimalError is the Eckart–Young error sqrt(Σ_{i>=k} σ_i²) of the best
// rank-k approximation of a matrix with singular values sigma.
func optimalError(sigma []float64, k int) float64 {
	var e float64
	for _, v := range sigma[min(k, len(sigma)):] {
		e += v * v
	}
	return math.Sqrt(e)
}

func baseValue(name string, i int, seed uint64) float32 {
	h := fnv.New64a()
	h.Write([]byte(name))
	x := h.Sum64() ^ seed ^ uint64(i)*0x9E3779B97F4A7C15
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return float32(float64(x>>11)/float64(1<<53)-0.5) * 0.2
}

// writeCheckpoint writes a synthetic checkpoint with the given params (all
// float params as dt), values baseValue + add[name] (a full-tensor delta).
func writeCheckpoint(t testing.TB, path string, ps []arch.Param, dt dtype.DType, seed uint64, add map[string][]float64) {
	t.Helper()
	specs := make([]safetensors.TensorSpec, len(ps))
	for i, p := range ps {
		d := dt
		if p.DType != "" {
			var err error
			if d, err = dtype.Parse(p.DType); err != nil {
				t.Fatal(err)
			}
		}
		specs[i] = safetensors.TensorSpec{Name: p.Name, DType: d, Shape: p.Shape}
	}
	w, err := safetensors.Create(path, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range w.Order() {
		n := int64(1)
		for _, d := range sp.Shape {
			n *= d
		}
		if !sp.DType.IsFloat() {
			size, _ := dtype.Size(sp.DType, n)
			if err := w.Write(sp.Name, make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		vals := make([]float32, n)
		a := add[sp.Name]
		for i := range vals {
			v := float64(baseValue(sp.Name, i, seed))
			if a != nil {
				v += a[i]
			}
			vals[i] = float32(v)
		}
		if _, err := w.WriteFloat32(sp.Name, vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// loraDelta recomputes a module's delta up@down·alpha/rank from a written
// LoRA file, in float64.
func loraDelta(t *testing.T, f *safetensors.File, name, format string) (delta []float64, rank int, upShape, downShape []int64) {
	t.Helper()
	upS, downS, alphaS := suffixes(format)
	ut, ok1 := f.Header.Lookup(name + upS)
	dt, ok2 := f.Header.Lookup(name + downS)
	if !ok1 || !ok2 {
		t.Fatalf("%s: no %s / %s", f.Path, name+upS, name+downS)
	}
	up, err := f.Float32(ut, nil)
	if err != nil {
		t.Fatal(err)
	}
	down, err := f.Float32(dt, nil)
	if err != nil {
		t.Fatal(err)
	}
	rank = int(ut.Shape[1])
	if int(dt.Shape[0]) != rank {
		t.Fatalf("%s: up rank %d, down rank %d", name, rank, dt.Shape[0])
	}
	scale := 1.0
	if alphaS != "" {
		at, ok := f.Header.Lookup(name + alphaS)
		if !ok {
			t.Fatalf("%s: no alpha", name)
		}
		a, err := f.Float32(at, nil)
		if err != nil {
			t.Fatal(err)
		}
		scale = float64(a[0]) / float64(rank)
	}
	rows := int(ut.Shape[0])
	cols := len(down) / rank
	delta = make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for c := 0; c < rank; c++ {
			u := float64(up[i*rank+c]) * scale
			for j := 0; j < cols; j++ {
				delta[i*cols+j] += u * float64(down[c*cols+j])
			}
		}
	}
	return delta, rank, ut.Shape, dt.Shape
}

func froDiff(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}

func tmpPath(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}

// findParam returns the first param whose name ends with suffix (and
// contains every extra substring) with both leading dims >= minDim.
func findParam(t *testing.T, ps []arch.Param, suffix string, minDim int64, contains ...string) arch.Param {
	t.Helper()
outer:
	for _, p := range ps {
		if !strings.HasSuffix(p.Name, suffix) || len(p.Shape) < 2 || p.Shape[0] < minDim || p.Shape[1] < minDim {
			continue
		}
		for _, c := range contains {
			if !strings.Contains(p.Name, c) {
				continue outer
			}
		}
		return p
	}
	t.Fatalf("no param *%s with dims >= %d", suffix, minDim)
	return arch.Param{}
}
