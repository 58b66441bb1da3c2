package merge

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

type rawTensor struct {
	name  string
	shape []int64
	data  []float32
}

// writeF32 writes float32 tensors with the package's writer.
func writeF32(t *testing.T, path string, ts []rawTensor) {
	t.Helper()
	var specs []safetensors.TensorSpec
	by := map[string][]float32{}
	for _, x := range ts {
		specs = append(specs, safetensors.TensorSpec{Name: x.name, DType: dtype.F32, Shape: x.shape})
		by[x.name] = x.data
	}
	w, err := safetensors.Create(path, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Order() {
		b := make([]byte, 4*len(by[s.Name]))
		for i, v := range by[s.Name] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		if err := w.Write(s.Name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// ramp is a deterministic, sign-alternating test vector.
func ramp(n int, seed float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = seed * float32((i%7)-3) / 8
	}
	return out
}

// Deltas of parameters that are not ".weight": LightX2V's .diff_m on Wan's
// modulation, full diffs of a bias and of Flux qk-norm scales, and a
// set_weight on a scale, checked against float64 math; "X.query_norm.diff"
// (ComfyUI ignores it: no key map entry) is reported, not applied.
func TestMergeParamDeltas(t *testing.T) {
	const s = 0.7
	for _, tc := range []struct {
		arch      string
		lora      []rawTensor
		diffs     map[string]string // base key → LoRA tensor added at strength s
		sets      map[string]string // base key → LoRA tensor copied
		unmatched []string
	}{
		{arch: "wan",
			lora: []rawTensor{
				{"diffusion_model.blocks.0.diff_m", []int64{1, 6, 32}, ramp(6*32, 1)},
				{"diffusion_model.blocks.39.diff_m", []int64{1, 6, 32}, ramp(6*32, -0.5)},
				{"diffusion_model.head.modulation.diff", []int64{1, 2, 32}, ramp(2*32, 2)},
				{"diffusion_model.blocks.3.ffn.0.bias.diff", []int64{64}, ramp(64, 0.25)},
			},
			diffs: map[string]string{
				"blocks.0.modulation":  "diffusion_model.blocks.0.diff_m",
				"blocks.39.modulation": "diffusion_model.blocks.39.diff_m",
				"head.modulation":      "diffusion_model.head.modulation.diff",
				"blocks.3.ffn.0.bias":  "diffusion_model.blocks.3.ffn.0.bias.diff",
			}},
		{arch: "flux1",
			lora: []rawTensor{
				{"diffusion_model.double_blocks.8.img_attn.norm.query_norm.scale.diff", []int64{16}, ramp(16, 1)},
				{"diffusion_model.double_blocks.8.img_attn.norm.key_norm.scale.set_weight", []int64{16}, ramp(16, 3)},
				{"diffusion_model.single_blocks.2.norm.key_norm.diff", []int64{16}, ramp(16, 1)},
			},
			diffs:     map[string]string{"double_blocks.8.img_attn.norm.query_norm.scale": "diffusion_model.double_blocks.8.img_attn.norm.query_norm.scale.diff"},
			sets:      map[string]string{"double_blocks.8.img_attn.norm.key_norm.scale": "diffusion_model.double_blocks.8.img_attn.norm.key_norm.scale.set_weight"},
			unmatched: []string{"diffusion_model.single_blocks.2.norm.key_norm.diff"}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			dir := t.TempDir()
			bp, lp, out := filepath.Join(dir, "base.safetensors"), filepath.Join(dir, "lora.safetensors"), filepath.Join(dir, "out.safetensors")
			if _, err := fixture.WriteCheckpoint(bp, fixture.CheckpointSpec{Arch: tc.arch, Size: arch.Tiny, DType: dtype.F32, Seed: 3, Layout: fixture.LayoutDiffusionModel}); err != nil {
				t.Fatal(err)
			}
			writeF32(t, lp, tc.lora)
			p, err := NewPlan(bp, []Input{{Path: lp, StrengthModel: s, StrengthClip: s}}, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var un []string
			for _, u := range p.Unmatched {
				un = append(un, u.Key)
			}
			if strings.Join(un, ",") != strings.Join(tc.unmatched, ",") {
				t.Errorf("unmatched %v, want %v", un, tc.unmatched)
			}
			p.Unmatched = nil // as merge --allow-unmatched does
			if _, err := p.Execute(context.Background(), out, Options{}); err != nil {
				t.Fatal(err)
			}
			base, _ := safetensors.Open(bp)
			defer base.Close()
			merged, _ := safetensors.Open(out)
			defer merged.Close()
			lf, _ := safetensors.Open(lp)
			defer lf.Close()
			check := func(key string, want []float64) {
				got, _ := f64(t, merged, key)
				for i := range got {
					if math.Abs(got[i]-want[i]) > 1e-6*(1+math.Abs(want[i])) {
						t.Fatalf("%s[%d] = %g, want %g", key, i, got[i], want[i])
					}
				}
			}
			for key, lk := range tc.diffs {
				w, _ := f64(t, base, key)
				d, _ := f64(t, lf, lk)
				for i := range w {
					w[i] += s * d[i]
				}
				check(key, w)
			}
			for key, lk := range tc.sets {
				d, _ := f64(t, lf, lk)
				check(key, d)
			}
			// everything else is untouched
			for _, ti := range base.Tensors {
				if tc.diffs[ti.Name] != "" || tc.sets[ti.Name] != "" {
					continue
				}
				mt, _ := merged.Lookup(ti.Name)
				if string(merged.Bytes(mt)) != string(base.Bytes(ti)) {
					t.Errorf("%s changed", ti.Name)
				}
			}
		})
	}
}
