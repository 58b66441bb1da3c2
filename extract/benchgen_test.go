package extract

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// TestGenerateBenchPair writes the full-size base/tuned pair used by
// bench/extract.sh. It runs only when EXTRACT_BENCH_DIR is set:
//
//	EXTRACT_BENCH_DIR     output directory (base.safetensors, tuned.safetensors, expected.json)
//	EXTRACT_BENCH_ARCH    architecture id (default sd1)
//	EXTRACT_BENCH_DTYPE   F16 (default) or BF16
//	EXTRACT_BENCH_BLOCKS  keep only blocks with index < N (reduced-depth DiTs; default all)
//	EXTRACT_BENCH_RANK    rank of the change (default 64)
//	EXTRACT_BENCH_KEEP    extraction rank the optimal error is computed for (default 32)
//
// tuned = base + U·diag(σ)·Vᵀ on every linear / conv weight of the
// diffusion model, U and V orthonormal (QR of Gaussian matrices) and
// σ_i = c·0.9^i, so the optimal rank-k error of every change is known
// exactly; expected.json holds the overall optimal relative error (the
// fp16/bf16 rounding of the tuned file adds a small full-rank noise on top).
func TestGenerateBenchPair(t *testing.T) {
	dir := os.Getenv("EXTRACT_BENCH_DIR")
	if dir == "" {
		t.Skip("EXTRACT_BENCH_DIR not set")
	}
	id := envOr("EXTRACT_BENCH_ARCH", "sd1")
	a, ok := arch.ByID(id)
	if !ok {
		t.Fatalf("unknown arch %s", id)
	}
	dt, err := dtype.Parse(envOr("EXTRACT_BENCH_DTYPE", "F16"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, _ := strconv.Atoi(envOr("EXTRACT_BENCH_BLOCKS", "0"))
	rank, _ := strconv.Atoi(envOr("EXTRACT_BENCH_RANK", "64"))
	keep, _ := strconv.Atoi(envOr("EXTRACT_BENCH_KEEP", "32"))
	ps := arch.CheckpointParams(a, arch.Full)
	if blocks > 0 {
		re := regexp.MustCompile(`(?:blocks|layers)\.(\d+)\.`)
		var kept []arch.Param
		for _, p := range ps {
			if m := re.FindStringSubmatch(p.Name); m != nil {
				if n, _ := strconv.Atoi(m[1]); n >= blocks {
					continue
				}
			}
			kept = append(kept, p)
		}
		ps = kept
	}
	var kept2 []arch.Param // drop the text encoders and VAE of DiTs (they are not extracted by default)
	for _, p := range ps {
		if blocks > 0 && !strings.HasPrefix(p.Name, a.DiffusionPrefix) {
			continue
		}
		kept2 = append(kept2, p)
	}
	ps = kept2
	var totalE, tailE float64
	deltas := func(name string, shape []int64) []float32 {
		if !strings.HasPrefix(name, a.DiffusionPrefix) || !strings.HasSuffix(name, ".weight") || (len(shape) != 2 && len(shape) != 4) {
			return nil
		}
		rows := int(shape[0])
		cols := 1
		for _, d := range shape[1:] {
			cols *= int(d)
		}
		r := min(rank, rows, cols)
		seed := uint64(len(name))*7919 + uint64(rows*31+cols)
		rng := rand.New(rand.NewPCG(seed, 5))
		u := orthoF32(rows, r, rng)
		v := orthoF32(cols, r, rng)
		// element RMS of Δ about 1e-3: ‖Δ‖_F = 1e-3·sqrt(rows·cols)
		var s2 float64
		for i := 0; i < r; i++ {
			s2 += math.Pow(0.81, float64(i))
		}
		c := 1e-3 * math.Sqrt(float64(rows*cols)/s2)
		for i := 0; i < r; i++ {
			s := c * math.Pow(0.9, float64(i))
			totalE += s * s
			if i >= keep {
				tailE += s * s
			}
			for j := 0; j < rows; j++ {
				u[j*r+i] *= float32(s)
			}
		}
		d := make([]float32, rows*cols)
		blas32.Implementation().Sgemm(blas.NoTrans, blas.Trans, rows, cols, r, 1, u, r, v, r, 0, d, cols)
		return d
	}
	base, tuned := filepath.Join(dir, "base.safetensors"), filepath.Join(dir, "tuned.safetensors")
	writeBench(t, base, ps, dt, nil)
	writeBench(t, tuned, ps, dt, deltas)
	exp := map[string]any{"arch": id, "dtype": dt.String(), "change_rank": rank, "extract_rank": keep,
		"optimal_rel_error": math.Sqrt(tailE / totalE), "tensors": len(ps)}
	b, _ := json.MarshalIndent(exp, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "expected.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("wrote %s and %s: optimal relative error at rank %d = %.5f\n", base, tuned, keep, math.Sqrt(tailE/totalE))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// orthoF32 returns an n×r float32 matrix with orthonormal columns (thin QR
// of a Gaussian matrix, float64).
func orthoF32(n, r int, rng *rand.Rand) []float32 {
	a := make([]float64, n*r)
	for i := range a {
		a[i] = rng.NormFloat64()
	}
	g := blas64.General{Rows: n, Cols: r, Stride: r, Data: a}
	tau := make([]float64, r)
	work := []float64{0}
	lapack64.Geqrf(g, tau, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Geqrf(g, tau, work, len(work))
	lapack64.Orgqr(g, tau, work, -1)
	if int(work[0]) > len(work) {
		work = make([]float64, int(work[0]))
	}
	lapack64.Orgqr(g, tau, work, len(work))
	out := make([]float32, n*r)
	for i, v := range g.Data {
		out[i] = float32(v)
	}
	return out
}

func writeBench(t *testing.T, path string, ps []arch.Param, dt dtype.DType, deltas func(string, []int64) []float32) {
	specs := make([]safetensors.TensorSpec, len(ps))
	for i, p := range ps {
		d := dt
		if p.DType != "" {
			d, _ = dtype.Parse(p.DType)
		}
		specs[i] = safetensors.TensorSpec{Name: p.Name, DType: d, Shape: p.Shape}
	}
	w, err := safetensors.Create(path, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf []float32
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
		if int64(cap(buf)) < n {
			buf = make([]float32, n)
		}
		vals := buf[:n]
		h := uint64(0xcbf29ce484222325)
		for _, c := range []byte(sp.Name) {
			h = (h ^ uint64(c)) * 0x100000001b3
		}
		for i := range vals {
			x := h + uint64(i)*0x9E3779B97F4A7C15
			x ^= x >> 31
			x *= 0xbf58476d1ce4e5b9
			x ^= x >> 29
			vals[i] = (float32(x>>40)/float32(1<<24) - 0.5) * 0.1
		}
		if deltas != nil {
			if d := deltas(sp.Name, sp.Shape); d != nil {
				for i := range vals {
					vals[i] += d[i]
				}
			}
		}
		if _, err := w.WriteFloat32(sp.Name, vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}
