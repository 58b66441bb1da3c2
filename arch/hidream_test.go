package arch

import "testing"

func TestHiDream(t *testing.T) {
	const c = 2560
	runArchB(t, archCaseB{
		id: "hidream", name: "HiDream-I1", priority: 42,
		// globals: t/p embedders 8, x_embedder 2, final_layer 4, 49
		// caption projections; double: adaLN 2, attn 20, MoE 3+12+1, ff_t 3;
		// single: adaLN 2, attn 10, MoE 16
		tensors: 8 + 2 + 4 + 49 + 16*(2+20+16+3) + 32*(2+10+16),
		shapes: map[string][]int64{
			"t_embedder.timestep_embedder.linear_1.weight":               {c, 256},
			"p_embedder.pooled_embedder.linear_1.weight":                 {c, 2048},
			"x_embedder.proj.weight":                                     {c, 64},
			"double_stream_blocks.0.block.adaLN_modulation.1.weight":     {12 * c, c},
			"double_stream_blocks.15.block.attn1.to_q_t.weight":          {c, c},
			"double_stream_blocks.0.block.attn1.q_rms_norm.weight":       {c},
			"double_stream_blocks.1.block.ff_i.experts.0.w1.weight":      {6912, c},
			"double_stream_blocks.1.block.ff_i.experts.3.w2.weight":      {c, 6912},
			"double_stream_blocks.1.block.ff_i.shared_experts.w3.weight": {3584, c},
			"double_stream_blocks.1.block.ff_i.gate.weight":              {4, c},
			"double_stream_blocks.1.block.ff_t.w1.weight":                {6912, c},
			"single_stream_blocks.31.block.adaLN_modulation.1.weight":    {6 * c, c},
			"single_stream_blocks.0.block.attn1.to_out.weight":           {c, c},
			"caption_projection.0.linear.weight":                         {c, 4096},
			"caption_projection.48.linear.weight":                        {c, 4096},
			"final_layer.linear.weight":                                  {64, c},
		},
		published: 17e9, tol: 0.02, // HiDream-I1: 17B
		noAliases:    []string{"single_stream_blocks.0.block.attn1.to_q_t", "single_stream_blocks.0.block.ff_t.w1", "caption_projection.49.linear"},
		evidence:     []string{"caption_projection.0.linear.weight [2560 4096]", "16 double_stream_blocks + 32 single_stream_blocks, 4 experts"},
		tinyEvidence: []string{"16 double_stream_blocks + 32 single_stream_blocks"},
		variants: []variantB{
			{name: "no caption_projection", edits: map[string][]int64{"caption_projection.0.linear.weight": nil}, ok: false},
		},
		encoders: []string{"clip_l", "clip_g", "t5xxl", "llama"},
		listings: []string{"corpus/keys/onetrainer-hidream-dora-1.json"},
		vae:      true,
	})
}
