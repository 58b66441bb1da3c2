package arch

import "testing"

func TestZImage(t *testing.T) {
	const c = 3840
	runArchB(t, archCaseB{
		id: "z-image", name: "Z-Image", priority: 43,
		// globals: x_embedder 2, t_embedder 4, cap_embedder 3, final_layer
		// 4, pad tokens 2; modulated blocks (30 layers + 2 noise refiners)
		// 13, context refiners 11
		tensors: 15 + 32*13 + 2*11,
		shapes: map[string][]int64{
			"x_embedder.weight":                       {c, 64},
			"t_embedder.mlp.0.weight":                 {1024, 256},
			"t_embedder.mlp.2.weight":                 {256, 1024},
			"cap_embedder.0.weight":                   {2560},
			"cap_embedder.1.weight":                   {c, 2560},
			"layers.29.attention.qkv.weight":          {3 * c, c},
			"layers.0.attention.out.weight":           {c, c},
			"layers.0.attention.q_norm.weight":        {128},
			"layers.0.feed_forward.w1.weight":         {10240, c},
			"layers.0.feed_forward.w2.weight":         {c, 10240},
			"layers.0.adaLN_modulation.0.weight":      {4 * c, 256},
			"noise_refiner.1.adaLN_modulation.0.bias": {4 * c},
			"context_refiner.1.ffn_norm2.weight":      {c},
			"final_layer.adaLN_modulation.1.weight":   {c, 256},
			"final_layer.linear.weight":               {64, c},
			"x_pad_token":                             {1, c},
			"cap_pad_token":                           {1, c},
		},
		// Z-Image: "6B"; the bf16 file (12.3 GB) holds ≈6.15B
		published: 6.15e9, tol: 0.02,
		aliases: map[string]Alias{
			"layers.5.attention.to_q":                sliceB("layers.5.attention.qkv", 0, c),
			"layers.5.attention.to_k":                sliceB("layers.5.attention.qkv", c, c),
			"context_refiner.0.attention.to_v":       sliceB("context_refiner.0.attention.qkv", 2*c, c),
			"layers.23.attention.to_out.0":           {Target: "layers.23.attention.out"},
			"noise_refiner.1.attention.norm_k":       {Target: "noise_refiner.1.attention.k_norm"},
			"all_x_embedder.2-1":                     {Target: "x_embedder"},
			"all_final_layer.2-1.adaLN_modulation.1": {Target: "final_layer.adaLN_modulation.1"},
		},
		// Lumina2's diffusers names must not resolve for Z-Image
		noAliases:    []string{"layers.16.attn.to_q", "layers.16.feed_forward.linear_1", "layers.16.norm1.linear", "context_refiner.0.adaLN_modulation.0", "norm_final"},
		evidence:     []string{"cap_embedder.1.weight [3840 2560]", "dim 3840", "30 heads", "30 layers", "z-image modulation", "Z-Image"},
		tinyEvidence: []string{"30 layers", "Z-Image"},
		variants: []variantB{
			{name: "Omni", edits: map[string][]int64{"siglip_embedder.1.weight": {c, 1152}}, ok: true, evidence: []string{"Z-Image Omni"}},
			{name: "no cap_embedder", edits: map[string][]int64{"cap_embedder.1.weight": nil}, ok: false},
		},
		encoders:  []string{"qwen3_4b"},
		listings:  []string{"corpus/keys/zimage-or-lumina-peft-1.json"},
		rejects:   []string{"corpus/keys/diffusers-lumina2-1.json"},
		modelSpec: "Z-Image",
		vae:       true,
	})
}
