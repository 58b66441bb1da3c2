package merge

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// f64 reads a tensor as float64.
func f64(t *testing.T, f *safetensors.File, key string) ([]float64, []int64) {
	t.Helper()
	ti, ok := f.Lookup(key)
	if !ok {
		t.Fatalf("%s: no tensor %s", f.Path, key)
	}
	v, err := f.Float32(ti, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out, ti.Shape
}

// loraDelta recomputes scale·up@down in float64 from the LoRA file.
func loraDelta(t *testing.T, lf *safetensors.File, m fixture.Module) (d []float64, rows, cols int) {
	t.Helper()
	up, us := f64(t, lf, m.Roles["up"])
	down, ds := f64(t, lf, m.Roles["down"])
	r := int(ds[0])
	rows = int(us[0])
	cols = len(down) / r
	scale := 1.0
	if k, ok := m.Roles["alpha"]; ok {
		a, _ := f64(t, lf, k)
		scale = a[0] / float64(r)
	}
	d = make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for k := 0; k < r; k++ {
			u := up[i*r+k] * scale
			for j := 0; j < cols; j++ {
				d[i*cols+j] += u * down[k*cols+j]
			}
		}
	}
	return d, rows, cols
}

type placement struct {
	key        string
	rowOffset  int
	transposed bool // stored transposed in the file (open_clip text_projection)
}

type mergeCase struct {
	name      string
	arch      string
	base      dtype.DType
	layout    string
	format    string
	loraDT    dtype.DType
	rank      int
	alpha     float32
	sModel    float64
	sClip     float64
	parts     []arch.Part
	filter    func(string) bool
	modelOnly bool
	place     func(m fixture.Module) placement
	tol       float64 // relative tolerance on the merged values
	// lbw is a block-weight spec; blockWeight the test's own multiplier
	// for a module (nil: 1)
	lbw         string
	blockWeight func(m fixture.Module) float64
}

func sd1Place(m fixture.Module) placement {
	if m.Target.Component == arch.DiffusionModel {
		return placement{key: "model.diffusion_model." + m.Target.Param}
	}
	return placement{key: "cond_stage_model.transformer." + m.Target.Param}
}

func sdxlPlace(m fixture.Module) placement {
	switch m.Target.Component {
	case arch.DiffusionModel:
		return placement{key: "model.diffusion_model." + m.Target.Param}
	case "clip_l":
		return placement{key: "conditioner.embedders.0.transformer." + m.Target.Param}
	}
	return openCLIPPlace(m, "conditioner.embedders.1.model.")
}

func refinerPlace(m fixture.Module) placement {
	if m.Target.Component == arch.DiffusionModel {
		return placement{key: "model.diffusion_model." + m.Target.Param}
	}
	return openCLIPPlace(m, "conditioner.embedders.0.model.")
}

func sd2Place(m fixture.Module) placement {
	if m.Target.Component == arch.DiffusionModel {
		return placement{key: "model.diffusion_model." + m.Target.Param}
	}
	return openCLIPPlace(m, "cond_stage_model.model.")
}

// openCLIPPlace: q/k/v are row thirds of in_proj_weight, text_projection
// is stored transposed (SDXL CLIP-G, SD2 CLIP-H).
func openCLIPPlace(m fixture.Module, prefix string) placement {
	p := m.Target.Param
	if p == "text_projection.weight" {
		return placement{key: prefix + "text_projection", transposed: true}
	}
	rest := strings.TrimPrefix(p, "text_model.encoder.layers.")
	num, tail, _ := strings.Cut(rest, ".")
	base := prefix + "transformer.resblocks." + num + "."
	width := 0
	if m.Target.Shape != nil {
		width = int(m.Target.Shape[1])
	}
	switch tail {
	case "self_attn.q_proj.weight":
		return placement{key: base + "attn.in_proj_weight", rowOffset: 0}
	case "self_attn.k_proj.weight":
		return placement{key: base + "attn.in_proj_weight", rowOffset: width}
	case "self_attn.v_proj.weight":
		return placement{key: base + "attn.in_proj_weight", rowOffset: 2 * width}
	case "self_attn.out_proj.weight":
		return placement{key: base + "attn.out_proj.weight"}
	case "mlp.fc1.weight":
		return placement{key: base + "mlp.c_fc.weight"}
	case "mlp.fc2.weight":
		return placement{key: base + "mlp.c_proj.weight"}
	}
	return placement{key: "?" + p}
}

// bareSlicePlace: diffusion-model-only file; slices from the target.
func bareSlicePlace(m fixture.Module) placement {
	off := 0
	if m.Target.Slice != nil {
		off = int(m.Target.Slice.Offset)
	}
	return placement{key: m.Target.Param, rowOffset: off}
}

func runMergeCase(t *testing.T, tc mergeCase) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.safetensors")
	if _, err := fixture.WriteCheckpoint(basePath, fixture.CheckpointSpec{Arch: tc.arch, Size: arch.Tiny, DType: tc.base, Seed: 1, Layout: tc.layout}); err != nil {
		t.Fatal(err)
	}
	loraPath := filepath.Join(dir, "lora.safetensors")
	mods, err := fixture.WriteLoRA(loraPath, fixture.LoRASpec{Arch: tc.arch, Size: arch.Tiny, Format: tc.format, Rank: tc.rank, Alpha: tc.alpha, DType: tc.loraDT, Seed: 7, Parts: tc.parts, Filter: tc.filter})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	in := Input{Path: loraPath, StrengthModel: tc.sModel, StrengthClip: tc.sClip}
	if tc.lbw != "" {
		if in.LBW, err = ParseBlockWeights(tc.lbw); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := NewPlan(basePath, []Input{in}, PlanOptions{ModelOnly: tc.modelOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if len(plan.Unmatched) > 0 {
		t.Fatalf("unmatched: %v", plan.Unmatched[:min(5, len(plan.Unmatched))])
	}
	rep, err := plan.Execute(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Patches == 0 {
		t.Fatal("no patches")
	}
	base, err := safetensors.Open(basePath)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	merged, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	lf, err := safetensors.Open(loraPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	// expected values per base tensor, accumulated from every module
	expect := map[string][]float64{}
	touched := map[string]bool{}
	for _, m := range mods {
		s := tc.sModel
		if m.Target.Component != arch.DiffusionModel {
			s = tc.sClip
			if tc.modelOnly {
				continue
			}
		}
		if tc.blockWeight != nil {
			s *= tc.blockWeight(m)
			if s == 0 {
				continue
			}
		}
		pl := tc.place(m)
		if _, ok := expect[pl.key]; !ok {
			v, _ := f64(t, base, pl.key)
			expect[pl.key] = v
		}
		d, rows, cols := loraDelta(t, lf, m)
		if m.Target.SwapScaleShift {
			// diffusers stores (scale, shift); the native weight (shift, scale)
			half := len(d) / 2
			d = append(append([]float64(nil), d[half:]...), d[:half]...)
		}
		w := expect[pl.key]
		for i := 0; i < rows*cols; i++ {
			if pl.transposed {
				r, c := i/cols, i%cols
				w[c*rows+r] += s * d[i]
				continue
			}
			w[pl.rowOffset*cols+i] += s * d[i]
		}
		touched[pl.key] = true
	}
	if len(touched) == 0 {
		t.Fatal("test LoRA touches nothing")
	}
	for _, ti := range base.Tensors {
		mt, ok := merged.Lookup(ti.Name)
		if !ok {
			t.Fatalf("output lacks %s", ti.Name)
		}
		if mt.DType != ti.DType {
			t.Fatalf("%s: dtype %s, base %s", ti.Name, mt.DType, ti.DType)
		}
		if !touched[ti.Name] {
			if string(merged.Bytes(mt)) != string(base.Bytes(ti)) {
				t.Errorf("%s changed although no LoRA module targets it", ti.Name)
			}
			continue
		}
		got, _ := f64(t, merged, ti.Name)
		want := expect[ti.Name]
		orig, _ := f64(t, base, ti.Name)
		var num, den float64
		for i := range got {
			num += (got[i] - want[i]) * (got[i] - want[i])
			den += (want[i] - orig[i]) * (want[i] - orig[i])
		}
		if den == 0 {
			t.Errorf("%s: expected change is zero", ti.Name)
			continue
		}
		if rel := math.Sqrt(num / den); rel > tc.tol {
			t.Errorf("%s: merged value differs from the independent computation: ‖err‖/‖Δ‖ = %.3g > %.3g", ti.Name, rel, tc.tol)
		}
	}
}

func TestMergeAgainstIndependentMath(t *testing.T) {
	notEmb := func(m string) bool { return !strings.Contains(m, "embed") }
	for _, tc := range []mergeCase{
		{name: "sd1 kohya f32", arch: "sd1", base: dtype.F32, format: "kohya", loraDT: dtype.F32, rank: 4, alpha: 2, sModel: 0.8, sClip: 0.5, place: sd1Place, tol: 1e-5},
		{name: "sd1 kohya f16", arch: "sd1", base: dtype.F16, format: "kohya", loraDT: dtype.F16, rank: 4, alpha: 4, sModel: 1, sClip: 1, place: sd1Place, tol: 2e-2},
		{name: "sd1 comfy bf16 model-only", arch: "sd1", base: dtype.BF16, format: "comfy", loraDT: dtype.F32, rank: 2, alpha: 1, sModel: 1.5, sClip: 1, modelOnly: true, place: sd1Place, tol: 0.2},
		{name: "sdxl kohya clip-g in_proj thirds", arch: "sdxl", base: dtype.F32, format: "kohya", loraDT: dtype.F32, rank: 4, alpha: 8, sModel: 1, sClip: 0.7, place: sdxlPlace, tol: 1e-5},
		{name: "sd2 kohya clip-h in_proj thirds", arch: "sd2", base: dtype.F32, format: "kohya", loraDT: dtype.F32, rank: 3, alpha: 3, sModel: 0.9, sClip: 0.6, place: sd2Place, tol: 1e-5},
		{name: "sdxl-refiner kohya", arch: "sdxl-refiner", base: dtype.F32, format: "kohya", loraDT: dtype.F32, rank: 2, alpha: 1, sModel: 1, sClip: 0.5, place: refinerPlace, tol: 1e-5},
		{name: "sdxl diffusers", arch: "sdxl", base: dtype.F32, format: "diffusers", loraDT: dtype.F32, rank: 4, sModel: 1, sClip: 1, place: sdxlPlace, tol: 1e-5},
		{name: "flux diffusers split qkv into fused", arch: "flux1", base: dtype.F32, layout: fixture.LayoutDiffusionModel, format: "diffusers", loraDT: dtype.F32, rank: 4, sModel: 0.8, sClip: 1, parts: []arch.Part{arch.DiT}, filter: notEmb, place: bareSlicePlace, tol: 1e-5},
		{name: "flux kohya bf16", arch: "flux1", base: dtype.BF16, layout: fixture.LayoutDiffusionModel, format: "kohya", loraDT: dtype.BF16, rank: 4, alpha: 4, sModel: 1, sClip: 1, parts: []arch.Part{arch.DiT}, place: bareSlicePlace, tol: 0.1},
		{name: "sd3 diffusers", arch: "sd3", base: dtype.F32, layout: fixture.LayoutDiffusionModel, format: "diffusers", loraDT: dtype.F32, rank: 4, sModel: 1, sClip: 1, parts: []arch.Part{arch.DiT}, filter: notEmb, place: bareSlicePlace, tol: 1e-5},
	} {
		t.Run(tc.name, func(t *testing.T) { runMergeCase(t, tc) })
	}
}

func TestMergeRejectsWrongArchitecture(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "sd1.safetensors")
	if _, err := fixture.WriteCheckpoint(basePath, fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	loraPath := filepath.Join(dir, "sdxl-lora.safetensors")
	if _, err := fixture.WriteLoRA(loraPath, fixture.LoRASpec{Arch: "sdxl", Size: arch.Full, Format: "kohya", Rank: 1, Alpha: 1,
		Filter: func(m string) bool { return strings.Contains(m, "attn2.to_k") }}); err != nil {
		t.Fatal(err)
	}
	_, err := NewPlan(basePath, []Input{{Path: loraPath, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "this is an sdxl LoRA; the checkpoint is sd1") {
		t.Fatalf("error %v, want the wrong-architecture message", err)
	}
}

func TestMergeUnmatchedWritesNothing(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "sd1.safetensors")
	if _, err := fixture.WriteCheckpoint(basePath, fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	loraPath := filepath.Join(dir, "lora.safetensors")
	specs := []safetensors.TensorSpec{
		{Name: "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", DType: dtype.F32, Shape: []int64{1, 10, 1, 1}},
		{Name: "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", DType: dtype.F32, Shape: []int64{10, 1, 1, 1}},
		{Name: "lora_unet_no_such_block.lora_down.weight", DType: dtype.F32, Shape: []int64{1, 10}},
		{Name: "lora_unet_no_such_block.lora_up.weight", DType: dtype.F32, Shape: []int64{10, 1}},
	}
	if err := safetensors.WriteFile(loraPath, specs, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		n, _ := dtype.Size(s.DType, 10)
		return make([]byte, n), nil
	}); err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(basePath, []Input{{Path: loraPath, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if len(plan.Unmatched) != 2 {
		t.Fatalf("unmatched %v, want the two no_such_block tensors", plan.Unmatched)
	}
	out := filepath.Join(dir, "out.safetensors")
	if _, err := plan.Execute(context.Background(), out, Options{}); err == nil {
		t.Fatal("merge with unmatched keys succeeded")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("output written despite unmatched keys")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temp file left: %s", e.Name())
		}
	}
}

func TestParseInput(t *testing.T) {
	for _, tc := range []struct {
		in     string
		path   string
		sm, sc float64
	}{
		{"a.safetensors", "a.safetensors", 1, 0.5},
		{"a.safetensors:0.8", "a.safetensors", 0.8, 0.8},
		{"a.safetensors:0.8:0.3", "a.safetensors", 0.8, 0.3},
		{"dir:x/a.safetensors:-1", "dir:x/a.safetensors", -1, -1},
	} {
		got, err := ParseInput(tc.in, 1, 0.5)
		if err != nil || got.Path != tc.path || got.StrengthModel != tc.sm || got.StrengthClip != tc.sc {
			t.Errorf("ParseInput(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func fixtureModule(up, down string) fixture.Module {
	return fixture.Module{Roles: map[string]string{"up": up, "down": down}}
}

// TestMergeEveryArchitecture merges a comfy-named LoRA on every weight of
// each registered architecture's diffusion model (reduced size, bare
// diffusion-model file) and checks every patched value independently.
func TestMergeEveryArchitecture(t *testing.T) {
	for _, a := range arch.All() {
		t.Run(a.ID, func(t *testing.T) {
			runMergeCase(t, mergeCase{arch: a.ID, base: dtype.F32, layout: fixture.LayoutDiffusionModel, format: "comfy", loraDT: dtype.F32,
				rank: 2, alpha: 1, sModel: 0.7, sClip: 1, parts: []arch.Part{a.Part}, place: bareSlicePlace, tol: 1e-5})
		})
	}
}
