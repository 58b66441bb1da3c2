package merge

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// mm multiplies a (r×k) by b (k×c) in float64.
func mm(a, b []float64, r, k, c int) []float64 {
	out := make([]float64, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < k; j++ {
			for l := 0; l < c; l++ {
				out[i*c+l] += a[i*k+j] * b[j*c+l]
			}
		}
	}
	return out
}

// independentDelta re-derives each LyCORIS algorithm's ΔW (with its scale)
// from the formulas in comfyui-lora.md §2, in float64.
func independentDelta(t *testing.T, lf *safetensors.File, m fixture.Module) []float64 {
	t.Helper()
	get := func(role string) ([]float64, []int64) { return f64(t, lf, m.Roles[role]) }
	alpha := math.NaN()
	if k, ok := m.Roles["alpha"]; ok {
		a, _ := f64(t, lf, k)
		alpha = a[0]
	}
	switch {
	case m.Roles["diff"] != "":
		d, _ := get("diff")
		return d
	case m.Roles["hada_w1_a"] != "":
		w1a, s1a := get("hada_w1_a")
		w1b, s1b := get("hada_w1_b")
		w2a, _ := get("hada_w2_a")
		w2b, _ := get("hada_w2_b")
		out, r := int(s1a[0]), int(s1a[1])
		in := len(w1b) / int(s1b[0])
		m1, m2 := mm(w1a, w1b, out, r, in), mm(w2a, w2b, out, r, in)
		scale := 1.0
		if !math.IsNaN(alpha) {
			scale = alpha / float64(s1b[0])
		}
		for i := range m1 {
			m1[i] *= m2[i] * scale
		}
		return m1
	case m.Roles["lokr_w1"] != "":
		w1, s1 := get("lokr_w1")
		w2a, s2a := get("lokr_w2_a")
		w2b, s2b := get("lokr_w2_b")
		a, c := int(s1[0]), int(s1[1])
		p, r := int(s2a[0]), int(s2a[1])
		q := len(w2b) / int(s2b[0])
		w2 := mm(w2a, w2b, p, r, q)
		scale := 1.0 // w1 full, w2 decomposed: alpha / w2_b rows
		if !math.IsNaN(alpha) {
			scale = alpha / float64(s2b[0])
		}
		// kron(w1 [a×c], w2 [p×q]) = [a·p × c·q]
		out := make([]float64, a*p*c*q)
		for i := 0; i < a; i++ {
			for j := 0; j < c; j++ {
				for k := 0; k < p; k++ {
					for l := 0; l < q; l++ {
						out[(i*p+k)*(c*q)+j*q+l] = w1[i*c+j] * w2[k*q+l] * scale
					}
				}
			}
		}
		return out
	}
	t.Fatalf("unexpected module roles %v", m.Roles)
	return nil
}

func TestMergeLyCORISAlgorithms(t *testing.T) {
	for _, algo := range []string{"loha", "lokr", "full"} {
		t.Run(algo, func(t *testing.T) {
			dir := t.TempDir()
			basePath := filepath.Join(dir, "base.safetensors")
			if _, err := fixture.WriteCheckpoint(basePath, fixture.CheckpointSpec{Arch: "sdxl", Size: arch.Tiny, DType: dtype.F32, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			loraPath := filepath.Join(dir, "lora.safetensors")
			rank := 4
			if algo == "full" {
				rank = 0
			}
			mods, err := fixture.WriteLoRA(loraPath, fixture.LoRASpec{Arch: "sdxl", Size: arch.Tiny, Format: "kohya", Algo: algo, Rank: rank, Alpha: 2, DType: dtype.F32, Seed: 11,
				Parts: []arch.Part{arch.UNet}, Conv: true, Filter: func(m string) bool { return strings.HasPrefix(m, "input_blocks.4") }})
			if err != nil {
				t.Fatal(err)
			}
			plan, err := NewPlan(basePath, []Input{{Path: loraPath, StrengthModel: 0.6, StrengthClip: 1}}, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			if len(plan.Unmatched) > 0 {
				t.Fatalf("unmatched %v", plan.Unmatched[0])
			}
			out := filepath.Join(dir, "out.safetensors")
			if _, err := plan.Execute(context.Background(), out, Options{}); err != nil {
				t.Fatal(err)
			}
			base, _ := safetensors.Open(basePath)
			defer base.Close()
			merged, _ := safetensors.Open(out)
			defer merged.Close()
			lf, _ := safetensors.Open(loraPath)
			defer lf.Close()
			if len(mods) < 5 {
				t.Fatalf("only %d modules", len(mods))
			}
			for _, m := range mods {
				key := "model.diffusion_model." + m.Target.Param
				b, _ := f64(t, base, key)
				g, _ := f64(t, merged, key)
				d := independentDelta(t, lf, m)
				changed := 0
				for i := range b {
					// the output is float32: allow the rounding of the sum
					want := b[i] + 0.6*d[i]
					// (torch semantics round s·ΔW to float32, then the sum)
					mag := float32(math.Max(math.Abs(want), math.Max(math.Abs(b[i]), math.Abs(0.6*d[i]))))
					ulp := float64(math.Nextafter32(mag, float32(math.Inf(1))) - mag)
					if math.Abs(g[i]-want) > 2*ulp {
						t.Fatalf("%s[%d] (%s): %.9g, want %.9g", key, i, algo, g[i], want)
					}
					if g[i] != b[i] {
						changed++
					}
				}
				if changed == 0 {
					t.Errorf("%s: nothing changed", key)
				}
			}
		})
	}
}
