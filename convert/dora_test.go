package convert

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// nativeMagnitudes reads every DoRA magnitude of a LoRA file and places it
// on its native weight's rows (slices and scale/shift swaps undone), using
// the registry's name resolution only. rows gives each native weight's
// number of rows in this file's size.
func nativeMagnitudes(t *testing.T, a *arch.Arch, path string, rows map[string]int) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, ti := range f.Tensors {
		p, ok := strings.CutSuffix(ti.Name, ".lora_magnitude_vector")
		if !ok {
			if p, ok = strings.CutSuffix(ti.Name, ".dora_scale"); !ok {
				continue
			}
		}
		tg, ok := a.Resolve(p)
		if !ok {
			t.Fatalf("%s: %s does not resolve", path, p)
		}
		key := tg.Component + "/" + tg.Module
		n, ok := rows[key]
		if !ok {
			t.Fatalf("%s: %s is not a generated module", path, key)
		}
		v, err := f.Float32(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Shape[0] != int64(len(v)) {
			t.Errorf("%s: magnitude shape %v is not along the output axis", ti.Name, ti.Shape)
		}
		if tg.SwapScaleShift {
			h := len(v) / 2
			v = append(append([]float32(nil), v[h:]...), v[:h]...)
		}
		off := 0
		if tg.Slice != nil {
			act, err := arch.ScaleSlice(tg.Slice, tg.Shape[0], int64(n))
			if err != nil {
				t.Fatal(err)
			}
			off = int(act.Offset)
		}
		if out[key] == nil {
			out[key] = make([]float32, n)
			for i := range out[key] {
				out[key][i] = float32(math.NaN())
			}
		}
		copy(out[key][off:], v)
	}
	return out
}

// TestDoRAConvertFluxSplitFuse converts a kohya Flux DoRA LoRA (fused qkv
// and linear1, the scale/shift-swapped final layer) to diffusers (split
// q/k/v, PEFT magnitude vectors) and back, and checks that every native
// row keeps its magnitude.
func TestDoRAConvertFluxSplitFuse(t *testing.T) {
	dir := t.TempDir()
	a, _ := arch.ByID("flux1")
	keep := func(m string) bool {
		return strings.HasPrefix(m, "double_blocks.0.img_attn.qkv") || strings.HasPrefix(m, "single_blocks.0.linear1") ||
			strings.HasPrefix(m, "final_layer.adaLN_modulation") || strings.HasPrefix(m, "double_blocks.0.img_mlp.0")
	}
	in := filepath.Join(dir, "kohya.safetensors")
	mods, err := fixture.WriteLoRA(in, fixture.LoRASpec{Arch: "flux1", Size: arch.Tiny, Format: "kohya", Algo: "dora", Rank: 2, Alpha: 1, DType: dtype.F32, Seed: 5, Filter: keep, Parts: []arch.Part{arch.DiT}})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, m := range mods {
		rows[m.Target.Component+"/"+m.Target.Module] = int(m.Target.Shape[0])
	}
	if len(rows) < 3 {
		t.Fatalf("fixture has %d modules", len(rows))
	}
	want := nativeMagnitudes(t, a, in, rows)
	diff := filepath.Join(dir, "diffusers.safetensors")
	res, err := File(in, diff, Options{To: "diffusers", Arch: "flux1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Split == 0 {
		t.Errorf("no module split: %+v", res)
	}
	back := filepath.Join(dir, "back.safetensors")
	if _, err := File(diff, back, Options{To: "kohya", Arch: "flux1"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{diff, back} {
		got := nativeMagnitudes(t, a, p, rows)
		for k, w := range want {
			g := got[k]
			if len(g) != len(w) {
				t.Fatalf("%s: %s: %d magnitudes, want %d", filepath.Base(p), k, len(g), len(w))
			}
			for i := range w {
				if g[i] != w[i] {
					t.Fatalf("%s: %s row %d: magnitude %v, want %v", filepath.Base(p), k, i, g[i], w[i])
				}
			}
		}
	}
}

// TestDoRAInputAxisRefused checks that a LyCORIS magnitude along the input
// axis (wd_on_out=False), which PEFT cannot express, is refused with a
// message naming the axis.
func TestDoRAInputAxisRefused(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.safetensors")
	p := "lora_unet_down_blocks_0_attentions_0_proj_in"
	err := safetensors.WriteFile(in, []safetensors.TensorSpec{
		{Name: p + ".lora_up.weight", DType: dtype.F32, Shape: []int64{320, 2}},
		{Name: p + ".lora_down.weight", DType: dtype.F32, Shape: []int64{2, 320}},
		{Name: p + ".dora_scale", DType: dtype.F32, Shape: []int64{1, 320}},
	}, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		return make([]byte, 4*n), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = File(in, filepath.Join(dir, "out.safetensors"), Options{To: "peft", Arch: "sd1"})
	if err == nil || !strings.Contains(err.Error(), "output axis") {
		t.Fatalf("input-axis DoRA: %v", err)
	}
}
