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

// matmul64 returns a (n×k) @ b (k×m) in float64.
func matmul64(a, b []float64, n, k, m int) []float64 {
	out := make([]float64, n*m)
	for i := 0; i < n; i++ {
		for q := 0; q < k; q++ {
			u := a[i*k+q]
			for j := 0; j < m; j++ {
				out[i*m+j] += u * b[q*m+j]
			}
		}
	}
	return out
}

// lycoDelta re-derives a fixture module's scaled delta in float64 from the
// LyCORIS definitions: LoKr kron(w1, w2_a@w2_b)·alpha/r, LoHa
// (w1_a@w1_b)⊙(w2_a@w2_b)·alpha/r, full diff, LoRA up@down·alpha/r (the
// DoRA magnitude is ignored: a LoRA file cannot carry it).
func lycoDelta(t *testing.T, f *safetensors.File, m fixture.Module, algo string) (d []float64, rows, cols int) {
	t.Helper()
	scale := 1.0
	alpha := func(r int) {
		if k, ok := m.Roles["alpha"]; ok {
			a, _ := f64(t, f, k)
			scale = a[0] / float64(r)
		}
	}
	switch algo {
	case "lokr":
		w1, s1 := f64(t, f, m.Roles["lokr_w1"])
		a, sa := f64(t, f, m.Roles["lokr_w2_a"])
		b, sb := f64(t, f, m.Roles["lokr_w2_b"])
		r := int(sa[1])
		alpha(r)
		r2, c2 := int(sa[0]), len(b)/r
		w2 := matmul64(a, b, r2, r, c2)
		r1, c1 := int(s1[0]), int(s1[1])
		rows, cols = r1*r2, c1*c2
		d = make([]float64, rows*cols)
		for i := 0; i < r1; i++ {
			for j := 0; j < c1; j++ {
				for p := 0; p < r2; p++ {
					for q := 0; q < c2; q++ {
						d[(i*r2+p)*cols+j*c2+q] = w1[i*c1+j] * w2[p*c2+q] * scale
					}
				}
			}
		}
		_ = sb
	case "loha":
		w1a, s := f64(t, f, m.Roles["hada_w1_a"])
		w1b, _ := f64(t, f, m.Roles["hada_w1_b"])
		w2a, _ := f64(t, f, m.Roles["hada_w2_a"])
		w2b, _ := f64(t, f, m.Roles["hada_w2_b"])
		r := int(s[1])
		alpha(r)
		rows, cols = int(s[0]), len(w1b)/r
		p1, p2 := matmul64(w1a, w1b, rows, r, cols), matmul64(w2a, w2b, rows, r, cols)
		d = make([]float64, rows*cols)
		for i := range d {
			d[i] = p1[i] * p2[i] * scale
		}
	case "full":
		var s []int64
		d, s = f64(t, f, m.Roles["diff"])
		rows = int(s[0])
		cols = len(d) / rows
	default: // lora, dora
		return loraDelta(t, f, m)
	}
	return d, rows, cols
}

func TestMergeLyCORISRefactored(t *testing.T) {
	dir := t.TempDir()
	a, _ := arch.ByID("sd1")
	onlyAttn := func(m string) bool { return strings.Contains(m, "attn2") || strings.Contains(m, "self_attn.q_proj") }
	type in struct {
		algo     string
		strength float64
	}
	cases := []struct {
		name   string
		inputs []in
		rank   int
		rule   string
	}{
		{"lokr+lora rank 3", []in{{"lokr", 0.8}, {"lora", -0.6}}, 3, ""},
		{"lokr alone rank 2", []in{{"lokr", -0.9}}, 2, ""},
		{"loha+lora rank 3 (factored)", []in{{"loha", 0.7}, {"lora", 1}}, 3, ""},
		{"loha alone sv_fro (factored)", []in{{"loha", -1.1}}, 0, "sv_fro:0.9"},
		{"lokr alone sv_fro", []in{{"lokr", 1.3}}, 0, "sv_fro:0.9"},
		{"loha+full rank 2", []in{{"loha", 1}, {"full", 0.5}}, 2, ""},
		{"lokr+loha+dora sv_fro", []in{{"lokr", 1}, {"loha", 0.7}, {"dora", 0.5}}, 0, "sv_fro:0.9"},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var inputs []Input
			want := map[string][]float64{}
			rowsOf := map[string]int{}
			for i, x := range c.inputs {
				p := filepath.Join(dir, c.name+string(rune('a'+i))+".safetensors")
				mods, err := fixture.WriteLoRA(p, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Algo: x.algo,
					Rank: 2, Alpha: 1.5, DType: dtype.F32, Seed: uint64(10*ci + i + 1), Filter: onlyAttn})
				if err != nil {
					t.Fatal(err)
				}
				inputs = append(inputs, Input{Path: p, StrengthModel: x.strength, StrengthClip: x.strength})
				f, err := safetensors.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range mods {
					d, rows, _ := lycoDelta(t, f, m, x.algo)
					key := m.Target.Component + "/" + m.Target.Module
					if want[key] == nil {
						want[key] = make([]float64, len(d))
					}
					rowsOf[key] = rows
					for j := range d {
						want[key][j] += x.strength * d[j]
					}
				}
				f.Close()
			}
			// without a rank: an error naming the options
			if _, err := MergeLoRAs(inputs, filepath.Join(dir, "no.safetensors"), LoRAMergeOptions{}); err == nil || !strings.Contains(err.Error(), "--rank") {
				t.Fatalf("merge without a rank: %v, want an error naming --rank", err)
			}
			out := filepath.Join(dir, c.name+"-out.safetensors")
			rep, err := MergeLoRAs(inputs, out, LoRAMergeOptions{DType: "fp32", Rank: c.rank, Rule: c.rule})
			if err != nil {
				t.Fatal(err)
			}
			hasDoRA := c.inputs[len(c.inputs)-1].algo == "dora"
			if hasDoRA != (len(rep.Notes) == 1 && strings.Contains(rep.Notes[0], "DoRA")) {
				t.Errorf("notes %v", rep.Notes)
			}
			got := mergedDeltas(t, out, a)
			reported := map[string]ModuleResult{}
			for _, m := range rep.Modules {
				tg, _ := a.Resolve(m.Name)
				reported[tg.Component+"/"+tg.Module] = m
			}
			if len(got) != len(want) {
				t.Fatalf("%d merged modules, want %d", len(got), len(want))
			}
			for k, w := range want {
				rows := rowsOf[k]
				cols := len(w) / rows
				var sv mat.SVD
				if !sv.Factorize(mat.NewDense(rows, cols, append([]float64{}, w...)), mat.SVDNone) {
					t.Fatal("svd failed")
				}
				s := sv.Values(nil)
				var total float64
				for _, v := range s {
					total += v * v
				}
				// the rank the rule or --rank picks on the exact spectrum
				k0 := min(c.rank, len(s))
				if c.rule != "" {
					var acc float64
					for i, v := range s {
						acc += v * v
						if math.Sqrt(acc/total) >= 0.9-1e-12 {
							k0 = i + 1
							break
						}
					}
				}
				m := reported[k]
				if m.Rank != k0 {
					t.Errorf("%s: rank %d, want %d", k, m.Rank, k0)
				}
				var head float64
				for _, v := range s[:k0] {
					head += v * v
				}
				wantRet := math.Sqrt(head / total)
				if math.Abs(m.Retained-wantRet) > 1e-5 {
					t.Errorf("%s: retained %.6f, gonum optimum %.6f", k, m.Retained, wantRet)
				}
				var num float64
				for j := range w {
					num += (got[k][j] - w[j]) * (got[k][j] - w[j])
				}
				optimal := math.Sqrt(math.Max(0, total-head) / total)
				if e := math.Sqrt(num / total); e > optimal*1.0001+1e-5 {
					t.Errorf("%s: rank-%d error %.6g, Eckart–Young optimum %.6g", k, k0, e, optimal)
				}
			}
		})
	}
}

// TestMergeLyCORISBlockWeights: lbw= scales LyCORIS deltas per block like
// LoRA deltas (OUT* dropped, MID halved).
func TestMergeLyCORISBlockWeights(t *testing.T) {
	dir := t.TempDir()
	a, _ := arch.ByID("sd1")
	p := filepath.Join(dir, "lokr.safetensors")
	if _, err := fixture.WriteLoRA(p, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Algo: "lokr", Rank: 2, Alpha: 1, DType: dtype.F32, Seed: 9,
		Filter: func(m string) bool { return strings.Contains(m, "attn2.to_q") }}); err != nil {
		t.Fatal(err)
	}
	plain, weighted := filepath.Join(dir, "plain.safetensors"), filepath.Join(dir, "lbw.safetensors")
	in, err := ParseInput(p, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MergeLoRAs([]Input{in}, plain, LoRAMergeOptions{DType: "fp32", Rank: 3}); err != nil {
		t.Fatal(err)
	}
	in, err = ParseInput(p+":1:1:lbw=OUT*:0,MID:0.5", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MergeLoRAs([]Input{in}, weighted, LoRAMergeOptions{DType: "fp32", Rank: 3}); err != nil {
		t.Fatal(err)
	}
	base, got := mergedDeltas(t, plain, a), mergedDeltas(t, weighted, a)
	for k, w := range base {
		g, ok := got[k]
		mult := 1.0
		switch {
		case strings.Contains(k, "output_blocks"):
			if ok {
				t.Errorf("%s: merged despite OUT*:0", k)
			}
			continue
		case strings.Contains(k, "middle_block"):
			mult = 0.5
		}
		if !ok {
			t.Fatalf("%s missing", k)
		}
		for i := range w {
			if math.Abs(g[i]-mult*w[i]) > 1e-5*(1+math.Abs(w[i])) {
				t.Fatalf("%s[%d]: %g, want %g×%g", k, i, g[i], mult, w[i])
			}
		}
	}
}

// TestMergeBiasDeltas: a bias-only full diff (diff_b) merges with a LoRA on
// the same weight; the bias deltas are summed exactly, the LoRA part is
// kept exactly at its own rank.
func TestMergeBiasDeltas(t *testing.T) {
	dir := t.TempDir()
	a, _ := arch.ByID("sd1")
	pa := filepath.Join(dir, "a.safetensors")
	mods, err := fixture.WriteLoRA(pa, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Rank: 2, Alpha: 2, DType: dtype.F32, Seed: 4,
		Filter: func(m string) bool { return m == "input_blocks.1.1.proj_in" }})
	if err != nil || len(mods) != 1 {
		t.Fatalf("%v, %d modules", err, len(mods))
	}
	m := mods[0]
	rows := int(m.Target.Shape[0])
	bias := make([]float32, rows)
	for i := range bias {
		bias[i] = float32(i) - 3
	}
	pb := filepath.Join(dir, "b.safetensors")
	if err := safetensors.WriteFile(pb, []safetensors.TensorSpec{{Name: m.Prefix + ".diff_b", DType: dtype.F32, Shape: []int64{int64(rows)}}}, nil,
		func(safetensors.TensorSpec) ([]byte, error) { return f32le(bias), nil }); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	rep, err := MergeLoRAs([]Input{{Path: pa, StrengthModel: 0.5, StrengthClip: 1}, {Path: pb, StrengthModel: -2, StrengthClip: 1}}, out, LoRAMergeOptions{DType: "fp32", Rank: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Modules) != 1 || rep.Modules[0].Retained < 1-1e-6 {
		t.Fatalf("report %+v", rep.Modules)
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, gs := f64(t, f, m.Prefix+".diff_b")
	if len(got) != rows {
		t.Fatalf("diff_b shape %v, want [%d]; target %v", gs, rows, m.Target.Shape)
	}
	for i, v := range got {
		if want := -2 * float64(bias[i]); math.Abs(v-want) > 1e-6 {
			t.Fatalf("diff_b[%d] = %g, want %g", i, v, want)
		}
	}
	src, err := safetensors.Open(pa)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want, _, _ := loraDelta(t, src, m)
	merged := mergedDeltas(t, out, a)[m.Target.Component+"/"+m.Target.Module]
	for i := range want {
		if math.Abs(merged[i]-0.5*want[i]) > 1e-5 {
			t.Fatalf("delta[%d] = %g, want %g", i, merged[i], 0.5*want[i])
		}
	}
}

// f32le is the little-endian float32 encoding of v.
func f32le(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}
