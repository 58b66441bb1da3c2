package arch

import (
	"strings"
	"testing"
)

func TestFlux2Params(t *testing.T) {
	// FLUX.2-dev: 32B parameters
	mmCheckParams(t, "flux2", 32_000_000_000, 1.5, []mmShapeCase{
		{"img_in.weight", []int64{6144, 128}},
		{"txt_in.weight", []int64{6144, 15360}},
		{"time_in.in_layer.weight", []int64{6144, 256}},
		{"guidance_in.out_layer.weight", []int64{6144, 6144}},
		{"double_blocks.0.img_attn.qkv.weight", []int64{18432, 6144}},
		{"double_blocks.7.txt_attn.norm.query_norm.scale", []int64{128}},
		{"double_blocks.0.img_mlp.0.weight", []int64{36864, 6144}},
		{"double_blocks.0.img_mlp.2.weight", []int64{6144, 18432}},
		{"single_blocks.0.linear1.weight", []int64{55296, 6144}},
		{"single_blocks.47.linear2.weight", []int64{6144, 24576}},
		{"double_stream_modulation_img.lin.weight", []int64{36864, 6144}},
		{"single_stream_modulation.lin.weight", []int64{18432, 6144}},
		{"final_layer.linear.weight", []int64{128, 6144}},
		{"final_layer.adaLN_modulation.1.weight", []int64{12288, 6144}},
	})
	for _, p := range mmArch(t, "flux2").Params(Full) {
		if strings.HasSuffix(p.Name, ".bias") {
			t.Errorf("flux2 has a bias: %s", p.Name)
		}
	}
}

func TestFlux2Aliases(t *testing.T) { mmCheckAliases(t, "flux2") }

func TestFlux2Detect(t *testing.T) {
	mmCheckDetect(t, "flux2", ": FLUX.2")
	if ok, ev := mmArch(t, "flux2").Detect(ParamsView(mmArch(t, "flux2").Params(Full))); !ok || !strings.HasSuffix(ev, ": FLUX.2-dev") {
		t.Errorf("Full: %q", ev)
	}
	a := mmArch(t, "flux2")
	full := ParamsView(a.Params(Full))
	for ctx, want := range map[int64]string{7680: "FLUX.2-klein 4B", 12288: "FLUX.2-klein 9B"} {
		v := mmWithout(full, "guidance_in.")
		v["txt_in.weight"] = []int64{4096, ctx}
		if ok, ev := a.Detect(v); !ok || !strings.HasSuffix(ev, want) {
			t.Errorf("context %d: %v %q", ctx, ok, ev)
		}
	}
}

// Flux.2 diffusers names: fused single-block projections and the shared
// modulation resolve with FLUX.2-dev's widths.
func TestFlux2DiffusersNames(t *testing.T) {
	a := mmArch(t, "flux2")
	l := mmListing{Shapes: map[string][]int64{}}
	add := func(k string, s ...int64) { l.Keys = append(l.Keys, k); l.Shapes[k] = s }
	add("transformer.single_transformer_blocks.47.attn.to_qkv_mlp_proj.lora_B.weight", 55296, 16)
	add("transformer.single_transformer_blocks.47.attn.to_out.lora_A.weight", 16, 24576)
	add("transformer.transformer_blocks.7.ff.linear_in.lora_B.weight", 36864, 16)
	add("transformer.transformer_blocks.7.ff_context.linear_out.lora_A.weight", 16, 18432)
	add("transformer.transformer_blocks.0.attn.to_k.lora_B.weight", 6144, 16)
	add("transformer.double_stream_modulation_txt.linear.lora_B.weight", 36864, 16)
	add("transformer.time_guidance_embed.guidance_embedder.linear_1.lora_A.weight", 16, 256)
	add("diffusion_model.single_blocks.0.linear1.lora_B.weight", 55296, 16)
	add("lora_unet_double_blocks_0_img_mlp_0.lora_down.weight", 16, 6144)
	mmCheckListing(t, a, l)
	// FLUX.1 LoRAs must not fit FLUX.2's widths
	if lk := mmIndex(a); lk.flat["single_blocks_0_linear1"].rows() == 21504 {
		t.Error("flux2 linear1 has FLUX.1 rows")
	}
}
