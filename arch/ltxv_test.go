package arch

import "testing"

func TestLTXV(t *testing.T) {
	const c = 2048
	runArchB(t, archCaseB{
		id: "ltxv", name: "LTX-Video", priority: 45,
		// globals: patchify_proj 2, adaln_single 6, caption_projection 4,
		// scale_shift_table 1, proj_out 2; per block: 2 attentions × 10,
		// ff 4, scale_shift_table 1
		tensors: 15 + 28*25,
		shapes: map[string][]int64{
			"patchify_proj.weight":                               {c, 128},
			"adaln_single.emb.timestep_embedder.linear_1.weight": {c, 256},
			"adaln_single.emb.timestep_embedder.linear_1.bias":   {c},
			"adaln_single.linear.weight":                         {6 * c, c},
			"caption_projection.linear_1.weight":                 {c, 4096},
			"transformer_blocks.27.attn1.to_q.weight":            {c, c},
			"transformer_blocks.0.attn1.q_norm.weight":           {c},
			"transformer_blocks.0.attn2.to_k.weight":             {c, c},
			"transformer_blocks.0.attn2.to_out.0.bias":           {c},
			"transformer_blocks.0.ff.net.0.proj.weight":          {4 * c, c},
			"transformer_blocks.0.ff.net.2.weight":               {c, 4 * c},
			"transformer_blocks.0.scale_shift_table":             {6, c},
			"scale_shift_table":                                  {2, c},
			"proj_out.weight":                                    {128, c},
		},
		published: 1.9e9, tol: 0.02, // LTX-Video paper: 1.9B (marketed "2B")
		aliases: map[string]Alias{
			"proj_in":           {Target: "patchify_proj"},
			"time_embed.linear": {Target: "adaln_single.linear"},
			"time_embed.emb.timestep_embedder.linear_1": {Target: "adaln_single.emb.timestep_embedder.linear_1"},
			"transformer_blocks.3.attn2.norm_k":         {Target: "transformer_blocks.3.attn2.k_norm"},
		},
		noAliases:    []string{"transformer_blocks.28.attn1.to_q", "transformer_blocks.0.attn1.to_out"},
		evidence:     []string{"adaln_single.emb.timestep_embedder.linear_1.bias [2048]", "head dim 64", "28 transformer_blocks", "LTX-Video 2B"},
		tinyEvidence: []string{"28 transformer_blocks"},
		variants: []variantB{
			{name: "PixArt diffusers", edits: map[string][]int64{"pos_embed.proj.bias": {c}}, ok: false},
			{name: "LTX-2", edits: map[string][]int64{"audio_adaln_single.linear.weight": {6 * c, c}}, ok: true, evidence: []string{"LTX-2"}},
		},
		encoders: []string{"t5xxl"},
	})
}
