package arch

import "testing"

func TestRegions(t *testing.T) {
	for _, tc := range []struct {
		name, region string
		unet         bool
	}{
		{"input_blocks.4.1.transformer_blocks.0.attn1.to_q", RegionIn, true},
		{"lora_unet_down_blocks_0_attentions_0_proj_in", RegionIn, true},
		{"middle_block.1.proj_in", RegionMid, true},
		{"output_blocks.5.1.proj_out", RegionOut, true},
		{"output_blocks.5.1.transformer_blocks.0.attn1.to_q", RegionOut, true},
		{"lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q", RegionOut, true},
		{"lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_2", RegionMid, true},
		{"single_transformer_blocks.3.proj_out", RegionMid, false},
		{"transformer_blocks.3.attn.to_q", RegionIn, false},
		{"double_blocks.3.img_attn.qkv", RegionIn, false},
		{"single_blocks.10.linear1", RegionMid, false},
		{"lora_te1_text_model_encoder_layers_0_mlp_fc1", RegionTextEncoder, false},
		{"final_layer.linear", RegionOther, false},
	} {
		if got := Region(tc.name); got != tc.region {
			t.Errorf("Region(%q) = %q, want %q", tc.name, got, tc.region)
		}
		if got := LooksLikeUNet(tc.name); got != tc.unet {
			t.Errorf("LooksLikeUNet(%q) = %v", tc.name, got)
		}
	}
}
