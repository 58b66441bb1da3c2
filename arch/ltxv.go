package arch

import "fmt"

// LTX-Video (Lightricks), whose ComfyUI names (comfy/ldm/lightricks/model.py)
// are diffusers-like: transformer_blocks.N.{attn1,attn2}.{to_q,to_k,to_v,
// to_out.0,q_norm,k_norm}, ff.net.0.proj, ff.net.2, the raw per-block
// scale_shift_table [6, dim], adaln_single.*, caption_projection.*,
// patchify_proj, proj_out and the final scale_shift_table [2, dim].
//
// Full is LTX-Video 2B (0.9.x; ≈1.9B parameters): 28 blocks, 32 heads of
// 64 (dim 2048), cross-attention dim 2048, T5-XXL caption features (4096),
// 128 latent channels (patch 1). LTX-Video 13B (0.9.7+: 48 blocks, dim
// 4096) uses the same names; LTX-2 (audio+video) adds audio_* modules and
// is not covered by Full.

type ltxvDimsB struct {
	dim, cross, caption, in, freq int64
	layers                        int
}

func ltxvDims(s Size) ltxvDimsB {
	if s == Tiny {
		return ltxvDimsB{dim: 32, cross: 32, caption: 32, in: 16, freq: 16, layers: 28}
	}
	return ltxvDimsB{dim: 2048, cross: 2048, caption: 4096, in: 128, freq: 256, layers: 28}
}

func ltxvParams(s Size) []Param {
	d := ltxvDims(s)
	c := d.dim
	var t tableB
	t.linear("patchify_proj", c, d.in, true)
	t.linear("adaln_single.emb.timestep_embedder.linear_1", c, d.freq, true)
	t.linear("adaln_single.emb.timestep_embedder.linear_2", c, c, true)
	t.linear("adaln_single.linear", 6*c, c, true)
	t.linear("caption_projection.linear_1", c, d.caption, true)
	t.linear("caption_projection.linear_2", c, c, true)
	for i := 0; i < d.layers; i++ {
		p := "transformer_blocks." + itoaB(i) + "."
		for _, at := range []string{"attn1", "attn2"} {
			kv := c
			if at == "attn2" {
				kv = d.cross
			}
			t.weight(p+at+".q_norm", c)
			t.weight(p+at+".k_norm", c)
			t.linear(p+at+".to_q", c, c, true)
			t.linear(p+at+".to_k", c, kv, true)
			t.linear(p+at+".to_v", c, kv, true)
			t.linear(p+at+".to_out.0", c, c, true)
		}
		t.linear(p+"ff.net.0.proj", 4*c, c, true)
		t.linear(p+"ff.net.2", c, 4*c, true)
		t.add(p+"scale_shift_table", 6, c)
	}
	t.add("scale_shift_table", 2, c)
	t.linear("proj_out", d.in, c, true)
	return t.ps
}

// ltxvAliases are diffusers LTXVideoTransformer3DModel names (diffusers'
// convert_ltx_to_diffusers: patchify_proj → proj_in, adaln_single →
// time_embed, q_norm/k_norm → norm_q/norm_k); every other module has the
// same name in both.
func ltxvAliases() []Alias {
	d := ltxvDims(Full)
	var a aliasesB
	a.to("proj_in", "patchify_proj")
	a.to("time_embed.emb.timestep_embedder.linear_1", "adaln_single.emb.timestep_embedder.linear_1")
	a.to("time_embed.emb.timestep_embedder.linear_2", "adaln_single.emb.timestep_embedder.linear_2")
	a.to("time_embed.linear", "adaln_single.linear")
	for i := 0; i < d.layers; i++ {
		p := "transformer_blocks." + itoaB(i) + "."
		for _, at := range []string{"attn1", "attn2"} {
			a.to(p+at+".norm_q", p+at+".q_norm")
			a.to(p+at+".norm_k", p+at+".k_norm")
		}
	}
	return a.as
}

func detectLTXV(v View) (bool, string) {
	const key = "adaln_single.emb.timestep_embedder.linear_1.bias"
	if !v.Has(key) || v.Has("pos_embed.proj.bias") || !v.Has("transformer_blocks.0.attn2.to_k.weight") {
		return false, ""
	}
	dim := dimB(v, key, 0)
	layers := v.Count("transformer_blocks.")
	variant := fmt.Sprintf("LTX-Video (dim %d)", dim)
	switch {
	case v.Has("audio_adaln_single.linear.weight"):
		variant = "LTX-2 (audio+video)"
	case dim == 2048 && layers == 28:
		variant = "LTX-Video 2B"
	case dim == 4096 && layers == 48:
		variant = "LTX-Video 13B"
	}
	return true, fmt.Sprintf("%s; transformer_blocks.0.attn2.to_k.weight %s (head dim %d at 32 heads); %d transformer_blocks; %s",
		keyEvidenceB(v, key), shapeB(v.Shape("transformer_blocks.0.attn2.to_k.weight")),
		dimB(v, "transformer_blocks.0.attn2.to_k.weight", 0)/32, layers, variant)
}

func init() {
	Register(&Arch{
		ID:                "ltxv",
		Name:              "LTX-Video",
		Part:              DiT,
		Priority:          45,
		Params:            ltxvParams,
		Aliases:           ltxvAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: T5, Comfy: "t5xxl", Kohya: []string{"lora_te1_"}, Diffusers: []string{"text_encoder."}, Model: T5XXLParams, CheckpointPrefix: "text_encoders.t5xxl.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		Detect:          detectLTXV,
	})
}
