package arch

import "testing"

func TestQwenImage(t *testing.T) {
	const c = 3072
	runArchB(t, archCaseB{
		id: "qwen-image", name: "Qwen-Image", priority: 41,
		// globals: timestep embedder 4, txt_norm 1, img_in 2, txt_in 2,
		// norm_out 2, proj_out 2; per block: mods 4, 8 projections × 2,
		// 4 qk norms, 2 MLPs × 4
		tensors: 13 + 60*(4+16+4+8),
		shapes: map[string][]int64{
			"time_text_embed.timestep_embedder.linear_1.weight": {c, 256},
			"txt_norm.weight":                                {3584},
			"img_in.weight":                                  {c, 64},
			"txt_in.weight":                                  {c, 3584},
			"transformer_blocks.0.img_mod.1.weight":          {6 * c, c},
			"transformer_blocks.59.txt_mod.1.bias":           {6 * c},
			"transformer_blocks.0.attn.to_q.weight":          {c, c},
			"transformer_blocks.0.attn.add_k_proj.bias":      {c},
			"transformer_blocks.0.attn.to_add_out.weight":    {c, c},
			"transformer_blocks.0.attn.norm_added_q.weight":  {128},
			"transformer_blocks.0.img_mlp.net.0.proj.weight": {4 * c, c},
			"transformer_blocks.0.txt_mlp.net.2.weight":      {c, 4 * c},
			"norm_out.linear.weight":                         {2 * c, c},
			"proj_out.weight":                                {64, c},
		},
		// Qwen-Image: "20B"; bf16 file 40.9 GB ≈ 20.4B
		published: 20.4e9, tol: 0.02,
		noAliases:    []string{"transformer_blocks.60.attn.to_q", "transformer_blocks.0.attn.to_qkv"},
		evidence:     []string{"txt_norm.weight [3584]", "img_in.weight [3072 64]", "60 transformer_blocks", "Qwen-Image"},
		tinyEvidence: []string{"60 transformer_blocks"},
		variants: []variantB{
			{name: "Edit-2511", edits: map[string][]int64{"__index_timestep_zero__": {}}, ok: true, evidence: []string{"Edit-2511"}},
			{name: "Layered", edits: map[string][]int64{"time_text_embed.addition_t_embedding.weight": {2, c}}, ok: true, evidence: []string{"Layered"}},
			{name: "no txt_norm", edits: map[string][]int64{"txt_norm.weight": nil}, ok: false},
		},
		encoders:  []string{"qwen25_7b"},
		samples:   []string{"corpus/keys-samples/sample-diffusers-qwen-image-1.json", "corpus/keys-samples/sample-kohya-qwen-image-lokr-1.json"},
		modelSpec: "Qwen-Image",
	})
}
