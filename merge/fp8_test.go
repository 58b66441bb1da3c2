package merge

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// TestMergeFluxFP8ModelOnly is the tutorial's second case on a reduced-size
// model: a Flux.1-dev fp8 (e4m3fn) diffusion-model file, a Flux LoRA,
// model only, strength 0.8. Every patched value must be the e4m3fn
// rounding of base + 0.8·ΔW computed here in float64.
func TestMergeFluxFP8ModelOnly(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "flux1-dev-fp8.safetensors")
	if _, err := fixture.WriteCheckpoint(basePath, fixture.CheckpointSpec{Arch: "flux1", Size: arch.Tiny, DType: dtype.F8E4M3, Seed: 5, Layout: fixture.LayoutDiffusionModel}); err != nil {
		t.Fatal(err)
	}
	loraPath := filepath.Join(dir, "flux-lora.safetensors")
	mods, err := fixture.WriteLoRA(loraPath, fixture.LoRASpec{Arch: "flux1", Size: arch.Tiny, Format: "comfy", Rank: 4, Alpha: 4, DType: dtype.BF16, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "merged.safetensors")
	plan, err := NewPlan(basePath, []Input{{Path: loraPath, StrengthModel: 0.8, StrengthClip: 0.8}}, PlanOptions{ModelOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if len(plan.Unmatched) != 0 {
		t.Fatalf("unmatched: %v", plan.Unmatched)
	}
	rep, err := plan.Execute(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := safetensors.Open(basePath)
	defer base.Close()
	merged, _ := safetensors.Open(out)
	defer merged.Close()
	lf, _ := safetensors.Open(loraPath)
	defer lf.Close()
	checked, off := 0, 0
	for _, m := range mods {
		if m.Target.Component != arch.DiffusionModel {
			continue // text-encoder modules: skipped by --model-only
		}
		b, _ := f64(t, base, m.Target.Param)
		d, _, _ := loraDelta(t, lf, m)
		ti, _ := merged.Lookup(m.Target.Param)
		if ti.DType != dtype.F8E4M3 {
			t.Fatalf("%s: output dtype %s, want F8_E4M3", ti.Name, ti.DType)
		}
		got := merged.Bytes(ti)
		for i := range d {
			want, _ := dtype.F32ToE4M3(float32(b[i] + 0.8*d[i]))
			if got[i] != want {
				// float32 vs float64 accumulation may flip a rounding tie
				if diff := int(got[i]&0x7f) - int(want&0x7f); diff > 1 || diff < -1 || got[i]&0x80 != want&0x80 {
					t.Fatalf("%s[%d]: 0x%02x, want 0x%02x", ti.Name, i, got[i], want)
				}
				off++
			}
			checked++
		}
	}
	if checked == 0 || off*1000 > checked {
		t.Fatalf("%d of %d values off by one code", off, checked)
	}
	if rep.DeltaError <= 0 || rep.DeltaError >= 1 {
		t.Errorf("delta error %.3g: fp8 must lose some of the delta, but not all", rep.DeltaError)
	}
	if len(rep.Skipped) == 0 {
		t.Errorf("text-encoder modules were not reported as skipped")
	}
}

// TestMergeScaledFP8 checks the scaled-fp8 scheme: W = q·scale is patched,
// the scale is recomputed as amax/448 and the weight re-quantised with it.
func TestMergeScaledFP8(t *testing.T) {
	dir := t.TempDir()
	const rows, cols, r = 6, 4, 2
	basePath := filepath.Join(dir, "scaled.safetensors")
	key := "double_blocks.0.img_attn.qkv"
	q := []float32{1, -2, 3, 448, 0.5, -0.25, 64, -64, 100, 200, -300, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	scale := float32(0.01)
	specs := []safetensors.TensorSpec{
		{Name: key + ".weight", DType: dtype.F8E4M3, Shape: []int64{rows, cols}},
		{Name: key + ".scale_weight", DType: dtype.F32, Shape: []int64{}},
	}
	err := safetensors.WriteFile(basePath, specs, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		if s.DType == dtype.F32 {
			b := make([]byte, 4)
			_, err := dtype.Encode(dtype.F32, []float32{scale}, b)
			return b, err
		}
		b := make([]byte, len(q))
		_, err := dtype.Encode(dtype.F8E4M3, q, b)
		return b, err
	})
	if err != nil {
		t.Fatal(err)
	}
	up := []float32{1, 0, 0, 1, 1, 1, 0, 2, 2, 0, -1, 1}   // 6×2
	down := []float32{0.5, 0.25, 0, -0.5, 1, 0, 0.5, 0.25} // 2×4
	loraPath := filepath.Join(dir, "lora.safetensors")
	ls := []safetensors.TensorSpec{
		{Name: "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", DType: dtype.F32, Shape: []int64{rows, r}},
		{Name: "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", DType: dtype.F32, Shape: []int64{r, cols}},
	}
	err = safetensors.WriteFile(loraPath, ls, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		v := up
		if s.Shape[0] == r {
			v = down
		}
		b := make([]byte, 4*len(v))
		_, err := dtype.Encode(dtype.F32, v, b)
		return b, err
	})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(basePath, []Input{{Path: loraPath, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{Arch: "flux1"})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	out := filepath.Join(dir, "out.safetensors")
	if _, err := plan.Execute(context.Background(), out, Options{}); err != nil {
		t.Fatal(err)
	}
	// independent expectation
	want := make([]float64, rows*cols)
	amax := 0.0
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			qv := float64(dtype.E4M3ToF32(mustE4M3(q[i*cols+j])))
			v := qv * float64(scale)
			for k := 0; k < r; k++ {
				v += float64(up[i*r+k]) * float64(down[k*cols+j])
			}
			want[i*cols+j] = v
			amax = math.Max(amax, math.Abs(v))
		}
	}
	newScale := float32(amax) / 448
	f, _ := safetensors.Open(out)
	defer f.Close()
	st, _ := f.Lookup(key + ".scale_weight")
	sv, _ := f.Float32(st, nil)
	if math.Abs(float64(sv[0]-newScale)) > 1e-9 {
		t.Fatalf("scale %g, want amax/448 = %g", sv[0], newScale)
	}
	wt, _ := f.Lookup(key + ".weight")
	got := f.Bytes(wt)
	for i, w := range want {
		code, _ := dtype.F32ToE4M3(float32(w) / newScale)
		if got[i] != code {
			t.Errorf("element %d: 0x%02x, want 0x%02x (%.5g/%.5g)", i, got[i], code, w, newScale)
		}
	}
}

func mustE4M3(v float32) uint8 {
	b, _ := dtype.F32ToE4M3(v)
	return b
}
