package arch

import "testing"

func TestLumina2(t *testing.T) {
	const c, kv = 2304, 768
	runArchB(t, archCaseB{
		id: "lumina2", name: "Lumina-Image 2.0", priority: 44,
		// globals: x_embedder 2, t_embedder 4, cap_embedder 3, final_layer
		// 4, norm_final 1; modulated blocks (26 layers + 2 noise refiners)
		// 13, context refiners 11
		tensors: 14 + 28*13 + 2*11,
		shapes: map[string][]int64{
			"x_embedder.weight":                        {c, 64},
			"t_embedder.mlp.0.weight":                  {1024, 256},
			"t_embedder.mlp.2.weight":                  {1024, 1024},
			"cap_embedder.0.weight":                    {2304},
			"cap_embedder.1.weight":                    {c, 2304},
			"layers.25.attention.qkv.weight":           {c + 2*kv, c},
			"layers.0.attention.out.weight":            {c, c},
			"layers.0.attention.k_norm.weight":         {96},
			"layers.0.feed_forward.w1.weight":          {9216, c},
			"layers.0.feed_forward.w2.weight":          {c, 9216},
			"layers.0.adaLN_modulation.1.weight":       {4 * c, 1024},
			"noise_refiner.0.adaLN_modulation.1.bias":  {4 * c},
			"context_refiner.1.attention_norm1.weight": {c},
			"final_layer.adaLN_modulation.1.weight":    {c, 1024},
			"final_layer.linear.weight":                {64, c},
			"norm_final.weight":                        {c},
		},
		published: 2.6e9, tol: 0.02, // Lumina-Image 2.0: 2.6B
		aliases: map[string]Alias{
			// diffusers Lumina2 names: GQA slices, not equal thirds
			"layers.16.attn.to_q":                           sliceB("layers.16.attention.qkv", 0, c),
			"layers.16.attn.to_k":                           sliceB("layers.16.attention.qkv", c, kv),
			"layers.16.attn.to_v":                           sliceB("layers.16.attention.qkv", c+kv, kv),
			"layers.16.attn.to_out.0":                       {Target: "layers.16.attention.out"},
			"layers.16.feed_forward.linear_1":               {Target: "layers.16.feed_forward.w1"},
			"layers.16.feed_forward.linear_3":               {Target: "layers.16.feed_forward.w3"},
			"layers.16.norm1.linear":                        {Target: "layers.16.adaLN_modulation.1"},
			"layers.16.norm1.norm":                          {Target: "layers.16.attention_norm1"},
			"context_refiner.1.norm1":                       {Target: "context_refiner.1.attention_norm1"},
			"noise_refiner.0.norm2":                         {Target: "noise_refiner.0.attention_norm2"},
			"time_caption_embed.caption_embedder.1":         {Target: "cap_embedder.1"},
			"time_caption_embed.timestep_embedder.linear_2": {Target: "t_embedder.mlp.2"},
			"norm_out.linear_1":                             {Target: "final_layer.adaLN_modulation.1"},
			"norm_out.linear_2":                             {Target: "final_layer.linear"},
			// z-image-style names ComfyUI also maps, with Lumina2's slices
			"layers.5.attention.to_k":     sliceB("layers.5.attention.qkv", c, kv),
			"layers.5.attention.to_out.0": {Target: "layers.5.attention.out"},
			"all_x_embedder.2-1":          {Target: "x_embedder"},
		},
		noAliases:    []string{"context_refiner.0.norm1.linear", "context_refiner.0.adaLN_modulation.1", "x_pad_token", "layers.26.attention.qkv"},
		evidence:     []string{"cap_embedder.1.weight [2304 2304]", "dim 2304", "rows 3840 (24 heads)", "26 layers", "Lumina-Image 2.0"},
		tinyEvidence: []string{"26 layers", "Lumina-Image 2.0"},
		variants: []variantB{
			{name: "NewBie", edits: map[string][]int64{"clip_text_pooled_proj.0.weight": {1024}}, ok: true, evidence: []string{"NewBie"}},
			{name: "no cap_embedder", edits: map[string][]int64{"cap_embedder.1.weight": nil}, ok: false},
		},
		encoders:     []string{"gemma2_2b"},
		listings:     []string{"corpus/keys/diffusers-lumina2-1.json", "corpus/keys/zimage-or-lumina-peft-1.json"},
		modelSpec:    "lumina-2",
		kohyaVersion: "lumina2",
		vae:          true,
	})
}
