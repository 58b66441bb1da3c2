package lora

import (
	"testing"

	"github.com/loratool/loratool/arch"
)

func TestIntendedModule(t *testing.T) {
	flux, _ := arch.ByID("flux1")
	sd1, _ := arch.ByID("sd1")
	for _, tc := range []struct {
		a      *arch.Arch
		prefix string
		want   string // "" = no hint
	}{
		{flux, "lora_unet_double_blocks_0_img_attn_qkv_", "diffusion_model double_blocks.0.img_attn.qkv"},
		{flux, "lora_unet_double_blocks.0.img_attn.proj", "diffusion_model double_blocks.0.img_attn.proj"},
		{flux, "base_model.model.lora_unet_single_blocks_3_linear2", "diffusion_model single_blocks.3.linear2"},
		{flux, "transformer.single_transformer_blocks.0.attn.to_q.default", "diffusion_model single_blocks.0.linear1 (rows 0..3072)"},
		{sd1, "lora_te_text_model_encoder_layers_0_mlp_fc1__", "clip_l text_model.encoder.layers.0.mlp.fc1"},
		{sd1, "lora_unet_down_blocks_0_attentions_0.proj_in", "diffusion_model input_blocks.1.1.proj_in"},
		{flux, "lora_unet_not_a_module_", ""},
		{flux, "completely.unknown", ""},
	} {
		got := ""
		if tg, ok := IntendedModule(tc.a, tc.prefix); ok {
			got = Describe(tg)
		}
		if got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.a.ID, tc.prefix, got, tc.want)
		}
	}
}

func TestUnknownKeyPrefix(t *testing.T) {
	for key, want := range map[string]string{
		"lora_unet_x_lora_up_weight":   "lora_unet_x",
		"lora_unet_y.lora_down_weight": "lora_unet_y",
		"a.b.lora_A_weight":            "a.b",
		"no_suffix_here":               "",
	} {
		got, ok := UnknownKeyPrefix(key)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", key, got, ok, want)
		}
	}
}
