package merge

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// mergedDeltas reads an output LoRA and returns scale·up@down per native
// weight (component + module), computed in float64.
func mergedDeltas(t *testing.T, path string, a *arch.Arch) map[string][]float64 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float64{}
	for _, ti := range f.Tensors {
		prefix, ok := strings.CutSuffix(ti.Name, ".lora_up.weight")
		if !ok {
			continue
		}
		tg, ok := a.Resolve(prefix)
		if !ok {
			t.Fatalf("output module %s does not resolve", prefix)
		}
		m := fixture.Module{Roles: map[string]string{"up": ti.Name, "down": prefix + ".lora_down.weight", "alpha": prefix + ".alpha"}}
		d, _, _ := loraDelta(t, f, m)
		out[tg.Component+"/"+tg.Module] = d
	}
	return out
}

func TestMergeLoRAsExactAndRecompressed(t *testing.T) {
	dir := t.TempDir()
	a, _ := arch.ByID("sd1")
	onlyAttn := func(m string) bool { return strings.Contains(m, "attn2") || strings.Contains(m, "self_attn.q_proj") }
	p1 := filepath.Join(dir, "a.safetensors")
	p2 := filepath.Join(dir, "b.safetensors")
	m1, err := fixture.WriteLoRA(p1, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Rank: 3, Alpha: 1.5, DType: dtype.F32, Seed: 3, Filter: onlyAttn})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := fixture.WriteLoRA(p2, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "diffusers", Rank: 2, DType: dtype.F32, Seed: 4, Filter: onlyAttn})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []Input{{Path: p1, StrengthModel: 0.7, StrengthClip: 0.4}, {Path: p2, StrengthModel: -0.5, StrengthClip: 1}}
	// the intended sum, computed independently per native weight
	want := map[string][]float64{}
	for i, mods := range [][]fixture.Module{m1, m2} {
		f, err := safetensors.Open(inputs[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mods {
			s := inputs[i].StrengthModel
			if m.Target.Component != arch.DiffusionModel {
				s = inputs[i].StrengthClip
			}
			d, _, _ := loraDelta(t, f, m)
			key := m.Target.Component + "/" + m.Target.Module
			if want[key] == nil {
				want[key] = make([]float64, len(d))
			}
			for j := range d {
				want[key][j] += s * d[j]
			}
		}
		f.Close()
	}
	exact := filepath.Join(dir, "exact.safetensors")
	rep, err := MergeLoRAs(inputs, exact, LoRAMergeOptions{DType: "fp32"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Exact || rep.RankMin != 5 {
		t.Fatalf("report %+v: want exact with rank 3+2", rep)
	}
	got := mergedDeltas(t, exact, a)
	if len(got) != len(want) {
		t.Fatalf("%d merged modules, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		var num, den float64
		for j := range w {
			num += (g[j] - w[j]) * (g[j] - w[j])
			den += w[j] * w[j]
		}
		if math.Sqrt(num/den) > 1e-6 {
			t.Errorf("%s: exact merge differs from Σ strength·ΔW by %.3g", k, math.Sqrt(num/den))
		}
	}
	// re-compressed to rank 2: error must equal the Eckart–Young optimum
	// computed by an independent dense SVD
	r2 := filepath.Join(dir, "r2.safetensors")
	if _, err := MergeLoRAs(inputs, r2, LoRAMergeOptions{DType: "fp32", Rank: 2}); err != nil {
		t.Fatal(err)
	}
	got = mergedDeltas(t, r2, a)
	for k, w := range want {
		var rows int
		for _, m := range append(m1, m2...) {
			if m.Target.Component+"/"+m.Target.Module == k {
				rows = int(m.Target.Shape[0])
			}
		}
		cols := len(w) / rows
		var sv mat.SVD
		if !sv.Factorize(mat.NewDense(rows, cols, w), mat.SVDNone) {
			t.Fatal("svd failed")
		}
		s := sv.Values(nil)
		var tail, total float64
		for i, v := range s {
			total += v * v
			if i >= 2 {
				tail += v * v
			}
		}
		var num float64
		for j := range w {
			num += (got[k][j] - w[j]) * (got[k][j] - w[j])
		}
		optimal := math.Sqrt(tail / total)
		if e := math.Sqrt(num / total); e > optimal*1.0001+1e-6 {
			t.Errorf("%s: rank-2 error %.6g, optimal %.6g", k, e, optimal)
		}
	}
}
