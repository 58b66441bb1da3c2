package arch

import (
	"strings"
	"testing"
)

func TestChromaParams(t *testing.T) {
	// Chroma1-HD / v48: 8.9B parameters
	mmCheckParams(t, "chroma", 8_900_000_000, 1, []mmShapeCase{
		{"img_in.weight", []int64{3072, 64}},
		{"txt_in.weight", []int64{3072, 4096}},
		{"distilled_guidance_layer.in_proj.weight", []int64{5120, 64}},
		{"distilled_guidance_layer.layers.4.out_layer.weight", []int64{5120, 5120}},
		{"distilled_guidance_layer.norms.0.scale", []int64{5120}},
		{"distilled_guidance_layer.out_proj.weight", []int64{3072, 5120}},
		{"double_blocks.0.img_attn.qkv.weight", []int64{9216, 3072}},
		{"double_blocks.18.txt_mlp.0.weight", []int64{12288, 3072}},
		{"double_blocks.0.img_attn.norm.key_norm.scale", []int64{128}},
		{"single_blocks.0.linear1.weight", []int64{21504, 3072}},
		{"single_blocks.37.linear2.weight", []int64{3072, 15360}},
		{"final_layer.linear.weight", []int64{64, 3072}},
	})
	v := ParamsView(mmArch(t, "chroma").Params(Full))
	for _, absent := range []string{"double_blocks.0.img_mod.lin.weight", "single_blocks.0.modulation.lin.weight",
		"vector_in.in_layer.weight", "guidance_in.in_layer.weight", "time_in.in_layer.weight",
		"final_layer.adaLN_modulation.1.weight"} {
		if v.Has(absent) {
			t.Errorf("chroma has %s", absent)
		}
	}
}

func TestChromaAliases(t *testing.T) { mmCheckAliases(t, "chroma") }

func TestChromaDetect(t *testing.T) {
	mmCheckDetect(t, "chroma", ": Chroma")
	a := mmArch(t, "chroma")
	full := ParamsView(a.Params(Full))
	radiance := mmWithout(full, "img_in.", "final_layer.")
	radiance["img_in_patch.weight"] = []int64{3072, 3, 16, 16}
	radiance["nerf_blocks.0.norm.scale"] = []int64{64}
	radiance["nerf_blocks.0.param_generator.weight"] = []int64{49152, 3072}
	ok, ev := a.Detect(radiance)
	if !ok || !strings.HasSuffix(ev, "Chroma Radiance (pixel space)") {
		t.Errorf("radiance: %v %q", ok, ev)
	}
	// older layout of the approximator's norms
	old := mmWithout(full, "distilled_guidance_layer.")
	old["distilled_guidance_layer.0.norms.0.scale"] = []int64{5120}
	if ok, ev := a.Detect(old); !ok {
		t.Errorf("old approximator layout not detected: %q", ev)
	}
	if ok, ev := mmArch(t, "flux1").Detect(full); ok {
		t.Errorf("flux1 claims chroma: %s", ev)
	}
}

// Chroma shares FLUX.1's block names: LoRAs that touch no modulation
// resolve against both; those with per-block modulation must not resolve.
func TestChromaCorpusListings(t *testing.T) {
	a := mmArch(t, "chroma")
	for _, rel := range []string{
		"corpus/keys/aitoolkit-flux-1.json",
		"corpus/keys/diffusers-flux-2.json",
		"corpus/keys/diffusers-flux-loradot-1.json",
	} {
		t.Run(rel, func(t *testing.T) { mmCheckListing(t, a, mmLoad(t, rel)) })
	}
	t.Run("leighwoods", func(t *testing.T) {
		mmCheckListing(t, a, mmHeader(t, "corpus/files/diffusers-flux-partial-r16_leighwoods.safetensors"))
	})
	lk := mmIndex(a)
	l := mmLoad(t, "corpus/keys/kohya-flux-1.json")
	for _, k := range l.Keys {
		mod, _, _ := mmSplit(k)
		if _, ok := lk.flat[mod]; ok == (strings.Contains(mod, "_mod_") || strings.Contains(mod, "modulation")) {
			t.Errorf("chroma: %s resolves = %v", k, ok)
		}
	}
}
