package arch

import (
	"strings"
	"testing"
)

func TestWan(t *testing.T) {
	const c = 5120
	i2vOnly := func(n string) bool {
		return strings.HasPrefix(n, "img_emb.") || strings.Contains(n, "_img.")
	}
	runArchB(t, archCaseB{
		id: "wan", name: "Wan 2.x", priority: 40,
		// globals: patch_embedding 2, text_embedding 4, time_embedding 4,
		// time_projection 2, head 3, img_emb 8; per block: modulation 1,
		// self_attn 10, cross_attn 10 + k_img/v_img 4 + norm_k_img 1,
		// norm3 2, ffn 4
		tensors: 2 + 4 + 4 + 2 + 3 + 8 + 40*(1+10+15+2+4),
		shapes: map[string][]int64{
			"patch_embedding.weight":                {c, 36, 1, 2, 2},
			"text_embedding.0.weight":               {c, 4096},
			"time_embedding.0.weight":               {c, 256},
			"time_projection.1.weight":              {6 * c, c},
			"blocks.0.modulation":                   {1, 6, c},
			"blocks.39.self_attn.q.weight":          {c, c},
			"blocks.0.self_attn.norm_k.weight":      {c},
			"blocks.7.cross_attn.k_img.weight":      {c, c},
			"blocks.7.cross_attn.norm_k_img.weight": {c},
			"blocks.0.norm3.bias":                   {c},
			"blocks.0.ffn.0.weight":                 {13824, c},
			"blocks.0.ffn.2.weight":                 {c, 13824},
			"head.head.weight":                      {64, c},
			"head.modulation":                       {1, 2, c},
			"img_emb.proj.1.weight":                 {1280, 1280},
			"img_emb.proj.3.weight":                 {c, 1280},
			"img_emb.proj.4.bias":                   {c},
		},
		// Wan 2.1 I2V-14B bf16 file 32.8 GB (≈16.4B); without the I2V
		// extras: T2V-14B, bf16 file 28.6 GB (≈14.3B, published "14B").
		published: 16.4e9, subsetPublished: 14.3e9, tol: 0.02,
		subset: func(n string) bool { return !i2vOnly(n) },
		aliases: map[string]Alias{
			"blocks.0.attn1.to_q":                             {Target: "blocks.0.self_attn.q"},
			"blocks.0.attn1.to_out.0":                         {Target: "blocks.0.self_attn.o"},
			"blocks.3.attn2.to_k":                             {Target: "blocks.3.cross_attn.k"},
			"blocks.3.attn2.add_k_proj":                       {Target: "blocks.3.cross_attn.k_img"},
			"blocks.3.attn2.add_v_proj":                       {Target: "blocks.3.cross_attn.v_img"},
			"blocks.3.attn2.norm_added_k":                     {Target: "blocks.3.cross_attn.norm_k_img"},
			"blocks.39.ffn.net.0.proj":                        {Target: "blocks.39.ffn.0"},
			"blocks.39.ffn.net.2":                             {Target: "blocks.39.ffn.2"},
			"blocks.2.norm2":                                  {Target: "blocks.2.norm3"},
			"blocks.2.scale_shift_table":                      {Target: "blocks.2.modulation"},
			"condition_embedder.time_proj":                    {Target: "time_projection.1"},
			"condition_embedder.text_embedder.linear_2":       {Target: "text_embedding.2"},
			"condition_embedder.image_embedder.ff.net.0.proj": {Target: "img_emb.proj.1"},
			"proj_out":          {Target: "head.head"},
			"scale_shift_table": {Target: "head.modulation"},
		},
		noAliases:    []string{"blocks.40.self_attn.q", "blocks.0.attn1.to_out", "blocks.0.norm1"},
		evidence:     []string{"head.modulation [1 2 5120]", "in_dim 36", "40 blocks", "ffn 13824", "Wan 14B i2v"},
		tinyEvidence: []string{"40 blocks", "i2v"},
		variants: func() []variantB {
			noImg := map[string][]int64{
				"img_emb.proj.0.weight": nil, "img_emb.proj.0.bias": nil,
				"patch_embedding.weight": {c, 16, 1, 2, 2},
			}
			with := func(extra map[string][]int64) map[string][]int64 {
				m := map[string][]int64{}
				for k, v := range noImg {
					m[k] = v
				}
				for k, v := range extra {
					m[k] = v
				}
				return m
			}
			return []variantB{
				{name: "t2v 14B", edits: noImg, ok: true, evidence: []string{"Wan 14B t2v", "in_dim 16"}},
				{name: "FLF2V", edits: map[string][]int64{"img_emb.emb_pos": {1, 514, 1280}}, ok: true, evidence: []string{"FLF2V"}},
				{name: "VACE", edits: with(map[string][]int64{"vace_patch_embedding.weight": {c, 96, 1, 2, 2}}), ok: true, evidence: []string{"VACE"}},
				{name: "1.3B", edits: with(map[string][]int64{"head.modulation": {1, 2, 1536}}), ok: true, evidence: []string{"Wan 1.3B", "dim 1536"}},
				{name: "2.2 TI2V-5B", edits: with(map[string][]int64{"head.modulation": {1, 2, 3072}, "head.head.weight": {192, 3072}, "patch_embedding.weight": {3072, 48, 1, 2, 2}}), ok: true, evidence: []string{"2.2 TI2V-5B", "out_dim 48", "ti2v"}},
				{name: "Fun-Control", edits: with(map[string][]int64{"patch_embedding.weight": {c, 48, 1, 2, 2}}), ok: true, evidence: []string{"Fun-Control"}},
				{name: "no head.modulation", edits: map[string][]int64{"head.modulation": nil}, ok: false},
			}
		}(),
		encoders:  []string{"umt5xxl"},
		listings:  []string{"corpus/keys/comfy-wan-1.json", "corpus/keys/comfy-wan-i2v-diff-3.json"},
		modelSpec: "wan2.1",
	})
}
