package convert

import (
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
	"github.com/loratool/loratool/svd"
)

// TestResizeApproximateLyCORIS resizes hand-built LoKr, LoHa and full-diff
// (3×3 conv with a bias delta) modules and checks each written delta, rank
// and retained fraction against the Eckart–Young optimum of the module's
// delta re-derived in float64 here and decomposed by gonum.
func TestResizeApproximateLyCORIS(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	randv := func(n int, decay int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() / float64(1+i%decay))
		}
		return v
	}
	mm := func(a, b []float32, n, k, m int) []float64 {
		out := make([]float64, n*m)
		for i := 0; i < n; i++ {
			for q := 0; q < k; q++ {
				for j := 0; j < m; j++ {
					out[i*m+j] += float64(a[i*k+q]) * float64(b[q*m+j])
				}
			}
		}
		return out
	}
	tensors := map[string][]float32{}
	shapes := map[string][]int64{}
	put := func(name string, v []float32, shape ...int64) { tensors[name], shapes[name] = v, shape }
	want := map[string][]float64{}
	rowsOf := map[string]int{}

	// LoKr: kron(w1 [4,5], w2_a [10,3] @ w2_b [3,8]) · alpha/3 → 40×40
	lk := "lora_unet_down_blocks_0_attentions_0_proj_in"
	w1, w2a, w2b := randv(20, 3), randv(30, 3), randv(24, 3)
	put(lk+".lokr_w1", w1, 4, 5)
	put(lk+".lokr_w2_a", w2a, 10, 3)
	put(lk+".lokr_w2_b", w2b, 3, 8)
	put(lk+".alpha", []float32{2}, 0)
	w2 := mm(w2a, w2b, 10, 3, 8)
	d := make([]float64, 40*40)
	for i := 0; i < 4; i++ {
		for j := 0; j < 5; j++ {
			for p := 0; p < 10; p++ {
				for q := 0; q < 8; q++ {
					d[(i*10+p)*40+j*8+q] = float64(w1[i*5+j]) * w2[p*8+q] * 2 / 3
				}
			}
		}
	}
	want[lk], rowsOf[lk] = d, 40

	// LoHa: (w1a@w1b) ⊙ (w2a@w2b) · alpha/4 → 30×30
	lh := "lora_unet_mid_block_attentions_0_proj_out"
	a1, b1, a2, b2 := randv(120, 4), randv(120, 4), randv(120, 4), randv(120, 4)
	put(lh+".hada_w1_a", a1, 30, 4)
	put(lh+".hada_w1_b", b1, 4, 30)
	put(lh+".hada_w2_a", a2, 30, 4)
	put(lh+".hada_w2_b", b2, 4, 30)
	put(lh+".alpha", []float32{3}, 0)
	p1, p2 := mm(a1, b1, 30, 4, 30), mm(a2, b2, 30, 4, 30)
	d = make([]float64, 900)
	for i := range d {
		d[i] = p1[i] * p2[i] * 3 / 4
	}
	want[lh], rowsOf[lh] = d, 30

	// full diff on a 3×3 conv [20, 10, 3, 3] with a bias delta
	fd := "lora_unet_down_blocks_0_resnets_0_conv1"
	diff := randv(20*90, 9)
	put(fd+".diff", diff, 20, 10, 3, 3)
	put(fd+".diff_b", randv(20, 1), 20)
	d = make([]float64, len(diff))
	for i, v := range diff {
		d[i] = float64(v)
	}
	want[fd], rowsOf[fd] = d, 20

	var specs []safetensors.TensorSpec
	for name, sh := range shapes {
		if len(sh) == 1 && sh[0] == 0 {
			sh = []int64{}
		}
		specs = append(specs, safetensors.TensorSpec{Name: name, DType: dtype.F32, Shape: sh})
	}
	in := filepath.Join(dir, "in.safetensors")
	if err := safetensors.WriteFile(in, specs, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		b := make([]byte, 4*len(tensors[s.Name]))
		_, err := dtype.Encode(dtype.F32, tensors[s.Name], b)
		return b, err
	}); err != nil {
		t.Fatal(err)
	}
	// without --approximate: refused, naming the option
	if _, err := Resize(in, filepath.Join(dir, "no.safetensors"), ResizeOptions{Rule: svd.Rule{Kind: svd.RuleFixed, Value: 3}, MaxRank: 3}); err == nil || !strings.Contains(err.Error(), "--approximate") {
		t.Fatalf("resize without --approximate: %v", err)
	}
	for _, c := range []struct {
		name string
		rule svd.Rule
		max  int
	}{
		{"fixed 3", svd.Rule{Kind: svd.RuleFixed, Value: 3}, 3},
		{"sv_fro 0.9", svd.Rule{Kind: svd.RuleSVFro, Value: 0.9}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "")+".safetensors")
			res, err := Resize(in, out, ResizeOptions{Rule: c.rule, MaxRank: c.max, Approximate: true})
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			read := func(name string) ([]float32, []int64) {
				ti, ok := f.Lookup(name)
				if !ok {
					t.Fatalf("no tensor %s", name)
				}
				v, err := f.Float32(ti, nil)
				if err != nil {
					t.Fatal(err)
				}
				return v, ti.Shape
			}
			if _, ok := f.Lookup(fd + ".diff_b"); !ok {
				t.Error("diff_b not kept")
			}
			for _, mr := range res.Modules {
				w := want[mr.Module]
				rows := rowsOf[mr.Module]
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
				k := c.max
				if c.rule.Kind == svd.RuleSVFro {
					var acc float64
					for i, v := range s {
						acc += v * v
						if math.Sqrt(acc/total) >= c.rule.Value-1e-12 {
							k = i + 1
							break
						}
					}
				}
				if mr.Rank != k {
					t.Errorf("%s: rank %d, want %d", mr.Module, mr.Rank, k)
				}
				var head float64
				for _, v := range s[:k] {
					head += v * v
				}
				if r := math.Sqrt(head / total); math.Abs(mr.Retained-r) > 1e-5 {
					t.Errorf("%s: retained %.6f, optimum %.6f", mr.Module, mr.Retained, r)
				}
				up, us := read(mr.Module + ".lora_up.weight")
				down, ds := read(mr.Module + ".lora_down.weight")
				alpha, _ := read(mr.Module + ".alpha")
				if int(ds[0]) != k || int(us[1]) != k || (mr.Module == fd && len(ds) != 4) {
					t.Errorf("%s: shapes up %v down %v", mr.Module, us, ds)
				}
				got := mm(up, down, rows, k, cols)
				var num float64
				for j := range w {
					e := got[j]*float64(alpha[0])/float64(k) - w[j]
					num += e * e
				}
				optimal := math.Sqrt(math.Max(0, total-head) / total)
				if e := math.Sqrt(num / total); e > optimal*1.0001+1e-5 {
					t.Errorf("%s: error %.6g, optimum %.6g", mr.Module, e, optimal)
				}
			}
		})
	}
}
