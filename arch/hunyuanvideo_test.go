package arch

import "testing"

func TestHunyuanVideo(t *testing.T) {
	const h = 3072
	runArchB(t, archCaseB{
		id: "hunyuan-video", name: "HunyuanVideo", priority: 12,
		// globals: img_in 2, time_in/vector_in/guidance_in 3×4, txt_in 2+4+4
		// + 2 refiner blocks × 14, final_layer 4; double 20 × 24; single 40 × 8
		tensors: 2 + 12 + 10 + 28 + 4 + 20*24 + 40*8,
		shapes: map[string][]int64{
			"img_in.proj.weight":                                                 {h, 16, 1, 2, 2},
			"txt_in.input_embedder.weight":                                       {h, 4096},
			"txt_in.c_embedder.in_layer.weight":                                  {h, 4096},
			"txt_in.individual_token_refiner.blocks.1.self_attn.qkv.weight":      {3 * h, h},
			"txt_in.individual_token_refiner.blocks.0.adaLN_modulation.1.weight": {2 * h, h},
			"txt_in.individual_token_refiner.blocks.0.norm1.weight":              {h},
			"vector_in.in_layer.weight":                                          {h, 768},
			"guidance_in.in_layer.weight":                                        {h, 256},
			"double_blocks.19.img_mod.lin.weight":                                {6 * h, h},
			"double_blocks.0.txt_attn.qkv.bias":                                  {3 * h},
			"double_blocks.0.img_attn.norm.query_norm.scale":                     {128},
			"double_blocks.9.txt_mlp.2.weight":                                   {h, 4 * h},
			"single_blocks.39.linear1.weight":                                    {7 * h, h},
			"single_blocks.0.linear2.weight":                                     {h, 5 * h},
			"single_blocks.0.modulation.lin.weight":                              {3 * h, h},
			"final_layer.linear.weight":                                          {64, h},
			"final_layer.adaLN_modulation.1.weight":                              {2 * h, h},
		},
		published: 13e9, tol: 0.02, // "13B" (Tencent); the bf16 file holds ≈12.8B
		aliases: map[string]Alias{
			"double_blocks.0.img_attn_qkv":                              {Target: "double_blocks.0.img_attn.qkv"},
			"double_blocks.3.txt_attn_proj":                             {Target: "double_blocks.3.txt_attn.proj"},
			"double_blocks.0.img_mod.linear":                            {Target: "double_blocks.0.img_mod.lin"},
			"double_blocks.0.img_mlp.fc1":                               {Target: "double_blocks.0.img_mlp.0"},
			"double_blocks.0.txt_mlp.fc2":                               {Target: "double_blocks.0.txt_mlp.2"},
			"single_blocks.5.modulation.linear":                         {Target: "single_blocks.5.modulation.lin"},
			"txt_in.individual_token_refiner.blocks.0.self_attn_qkv":    {Target: "txt_in.individual_token_refiner.blocks.0.self_attn.qkv"},
			"txt_in.individual_token_refiner.blocks.1.mlp.fc1":          {Target: "txt_in.individual_token_refiner.blocks.1.mlp.0"},
			"time_in.mlp.0":                                             {Target: "time_in.in_layer"},
			"double_blocks.2.img_attn_q_norm":                           {Target: "double_blocks.2.img_attn.norm.query_norm"},
			"transformer_blocks.1.attn.to_k":                            sliceB("double_blocks.1.img_attn.qkv", h, h),
			"transformer_blocks.1.attn.add_v_proj":                      sliceB("double_blocks.1.txt_attn.qkv", 2*h, h),
			"transformer_blocks.1.norm1_context.linear":                 {Target: "double_blocks.1.txt_mod.lin"},
			"single_transformer_blocks.39.proj_mlp":                     sliceB("single_blocks.39.linear1", 3*h, 4*h),
			"single_transformer_blocks.7.proj_out":                      {Target: "single_blocks.7.linear2"},
			"context_embedder.token_refiner.refiner_blocks.0.attn.to_v": sliceB("txt_in.individual_token_refiner.blocks.0.self_attn.qkv", 2*h, h),
			"context_embedder.time_text_embed.text_embedder.linear_1":   {Target: "txt_in.c_embedder.in_layer"},
			"norm_out.linear":                                           {Target: "final_layer.adaLN_modulation.1", SwapScaleShift: true},
			"x_embedder.proj":                                           {Target: "img_in.proj"},
		},
		noAliases:    []string{"img_in", "txt_in", "double_blocks.20.img_attn.qkv", "single_blocks.40.linear1"},
		evidence:     []string{"txt_in.individual_token_refiner.blocks.0.norm1.weight [3072]", "img_in.proj.weight [3072 16 1 2 2]", "20 double + 40 single", "HunyuanVideo T2V", "guidance"},
		tinyEvidence: []string{"20 double + 40 single", "HunyuanVideo T2V"},
		variants: []variantB{
			{name: "I2V", edits: map[string][]int64{"img_in.proj.weight": {h, 33, 1, 2, 2}}, ok: true, evidence: []string{"HunyuanVideo I2V", "in_channels 33"}},
			{name: "SkyReels", edits: map[string][]int64{"img_in.proj.weight": {h, 32, 1, 2, 2}}, ok: true, evidence: []string{"SkyReels"}},
			{name: "1.5", edits: map[string][]int64{"cond_type_embedding.weight": {3, h}, "vision_in.proj.0.weight": {1152}}, ok: true, evidence: []string{"HunyuanVideo 1.5"}},
			{name: "HunyuanImage 2.1", edits: map[string][]int64{"img_in.proj.weight": {h, 64, 1, 1}}, ok: true, evidence: []string{"HunyuanImage 2.1"}},
			{name: "no guidance", edits: map[string][]int64{"guidance_in.in_layer.weight": nil}, ok: true},
			{name: "no refiner (Flux-like)", edits: map[string][]int64{"txt_in.individual_token_refiner.blocks.0.norm1.weight": nil}, ok: false},
		},
		encoders: []string{"llama", "clip_l"},
		listings: []string{
			"corpus/keys/comfy-hunyuanvideo-diff-1.json",
			// kohya-flux-oft-1 lists flux1 and hunyuan-video (expected.json);
			// its oft_unet_ names are checked through the generic flattening.
		},
		modelSpec: "hunyuan-video",
	})
}
