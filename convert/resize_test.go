package convert

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
	"github.com/loratool/loratool/svd"
)

// TestResizeAgainstDenseSVD builds LoRAs (linear and 3×3 conv), resizes
// them and checks the kept rank, the reported retained fraction and the
// written delta against an independent dense float64 SVD of
// scale·up@down computed here with gonum.
func TestResizeAgainstDenseSVD(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	type mod struct {
		name          string
		rows, r, cols int
		conv          bool
		up, down      []float32
		alpha         float32
	}
	mods := []mod{
		{name: "lora_unet_down_blocks_0_attentions_0_proj_in", rows: 40, r: 16, cols: 40, alpha: 8},
		{name: "lora_unet_down_blocks_0_resnets_0_conv1", rows: 20, r: 12, cols: 10 * 9, conv: true, alpha: 3},
		{name: "lora_unet_mid_block_attentions_0_proj_out", rows: 30, r: 4, cols: 30, alpha: 4},
	}
	var specs []safetensors.TensorSpec
	data := map[string][]float32{}
	for i := range mods {
		m := &mods[i]
		m.up = make([]float32, m.rows*m.r)
		m.down = make([]float32, m.r*m.cols)
		for j := range m.up {
			m.up[j] = float32(rng.NormFloat64() / float64(1+j%m.r))
		}
		for j := range m.down {
			m.down[j] = float32(rng.NormFloat64())
		}
		us, ds := []int64{int64(m.rows), int64(m.r)}, []int64{int64(m.r), int64(m.cols)}
		if m.conv {
			us, ds = []int64{int64(m.rows), int64(m.r), 1, 1}, []int64{int64(m.r), 10, 3, 3}
		}
		specs = append(specs, safetensors.TensorSpec{Name: m.name + ".lora_up.weight", DType: dtype.F32, Shape: us},
			safetensors.TensorSpec{Name: m.name + ".lora_down.weight", DType: dtype.F32, Shape: ds},
			safetensors.TensorSpec{Name: m.name + ".alpha", DType: dtype.F32, Shape: []int64{}})
		data[m.name+".lora_up.weight"], data[m.name+".lora_down.weight"], data[m.name+".alpha"] = m.up, m.down, []float32{m.alpha}
	}
	in := filepath.Join(dir, "in.safetensors")
	if err := safetensors.WriteFile(in, specs, map[string]string{"ss_network_dim": "16"}, func(s safetensors.TensorSpec) ([]byte, error) {
		b := make([]byte, 4*len(data[s.Name]))
		_, err := dtype.Encode(dtype.F32, data[s.Name], b)
		return b, err
	}); err != nil {
		t.Fatal(err)
	}
	dense := func(m mod) *mat.Dense {
		d := mat.NewDense(m.rows, m.cols, nil)
		s := float64(m.alpha) / float64(m.r)
		for i := 0; i < m.rows; i++ {
			for c := 0; c < m.cols; c++ {
				var sum float64
				for j := 0; j < m.r; j++ {
					sum += float64(m.up[i*m.r+j]) * float64(m.down[j*m.cols+c])
				}
				d.Set(i, c, s*sum)
			}
		}
		return d
	}
	for _, rule := range []string{"fixed:6", "sv_fro:0.9", "sv_ratio:4", "sv_cumulative:0.8"} {
		r, _ := svd.ParseRule(rule)
		out := filepath.Join(dir, "out-"+rule+".safetensors")
		res, err := Resize(in, out, ResizeOptions{Rule: r, MaxRank: 0})
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range mods {
			var dec mat.SVD
			if !dec.Factorize(dense(m), mat.SVDThin) {
				t.Fatal("reference SVD failed")
			}
			s := dec.Values(nil)
			// the rule applied literally to the reference spectrum
			var want int
			var tot, tot2, acc float64
			for _, v := range s {
				tot += v
				tot2 += v * v
			}
			switch r.Kind {
			case "fixed":
				want = int(r.Value)
			case "sv_fro":
				for want = 0; want < len(s) && math.Sqrt(acc/tot2) < r.Value-1e-12; want++ {
					acc += s[want] * s[want]
				}
			case "sv_cumulative":
				for want = 0; want < len(s) && acc/tot < r.Value-1e-12; want++ {
					acc += s[want]
				}
			case "sv_ratio":
				for _, v := range s {
					if v >= s[0]/r.Value*(1-1e-12) {
						want++
					}
				}
			}
			want = max(1, min(want, m.r))
			rep := res.Modules[i]
			if rep.Rank != want {
				t.Errorf("%s %s: rank %d, reference %d", rule, m.name, rep.Rank, want)
				continue
			}
			var head float64
			for _, v := range s[:want] {
				head += v * v
			}
			if math.Abs(rep.Retained-math.Sqrt(head/tot2)) > 1e-9 {
				t.Errorf("%s %s: retained %v, reference %v", rule, m.name, rep.Retained, math.Sqrt(head/tot2))
			}
			// written delta vs reference rank-k truncation
			ut, _ := f.Lookup(m.name + ".lora_up.weight")
			dt, _ := f.Lookup(m.name + ".lora_down.weight")
			at, _ := f.Lookup(m.name + ".alpha")
			up, _ := f.Float32(ut, nil)
			down, _ := f.Float32(dt, nil)
			al, _ := f.Float32(at, nil)
			k := int(ut.Shape[1])
			if k != want {
				t.Fatalf("%s: up has rank %d", m.name, k)
			}
			sc := float64(al[0]) / float64(k)
			var U, V mat.Dense
			dec.UTo(&U)
			dec.VTo(&V)
			var num, den float64
			for i := 0; i < m.rows; i++ {
				for c := 0; c < m.cols; c++ {
					var got, ref float64
					for j := 0; j < k; j++ {
						got += float64(up[i*k+j]) * float64(down[j*m.cols+c])
						ref += U.At(i, j) * s[j] * V.At(c, j)
					}
					got *= sc
					num += (got - ref) * (got - ref)
					den += ref * ref
				}
			}
			if math.Sqrt(num/den) > 1e-5 {
				t.Errorf("%s %s: delta differs from the reference truncation by %.3g", rule, m.name, math.Sqrt(num/den))
			}
		}
		f.Close()
	}
}
