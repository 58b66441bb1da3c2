package arch

// Lumina-Image 2.0 (Alpha-VLLM), a NextDiT run by ComfyUI's
// comfy/ldm/lumina/model.py: layers.N.attention.{qkv,out,q_norm,k_norm},
// feed_forward.w1/w2/w3, attention_norm1/2, ffn_norm1/2,
// adaLN_modulation.1, 2 noise_refiner (modulated) + 2 context_refiner
// blocks, cap_embedder, t_embedder, final_layer and the unused norm_final
// that real checkpoints carry.
//
// Full is Lumina-Image 2.0 (≈2.6B parameters): dim 2304, 24 heads of 96
// with 8 KV heads, so attention.qkv has 2304 + 768 + 768 rows (not equal
// thirds), 26 layers, SwiGLU hidden 9216, Gemma-2-2B caption features
// (2304), in_channels 16, patch 2. NewBie (Lumina2 with
// clip_text_pooled_proj) shares the names but its extras are not in Full.

func lumina2Config(s Size) nextDiTB {
	if s == Tiny {
		// GQA kept in Full's 3:1 ratio (qkv rows 48 + 16 + 16), so the
		// q/k/v slices scale exactly onto the tiny qkv.
		return nextDiTB{dim: 48, heads: 3, kvHeads: 1, ffn: 192, capFeat: 16, in: 16, freq: 16, tHidden: 48, tOut: 48, layers: 26, refiners: 2}
	}
	return nextDiTB{dim: 2304, heads: 24, kvHeads: 8, ffn: 9216, capFeat: 2304, in: 16, freq: 256, tHidden: 1024, tOut: 1024, layers: 26, refiners: 2}
}

func lumina2Params(s Size) []Param { return nextDiTParamsB(lumina2Config(s)) }

// lumina2Aliases: diffusers Lumina2Transformer2DModel names (diffusers'
// convert_lumina2_to_diffusers / _convert_non_diffusers_lumina2_lora_to_
// diffusers) and the z-image-style names ComfyUI also maps onto Lumina2,
// both with the GQA slices q 2304 / k 768 / v 768.
func lumina2Aliases() []Alias {
	c := lumina2Config(Full)
	q, kv := c.dim, c.kvHeads*(c.dim/c.heads)
	var a aliasesB
	block := func(p string, modulated bool) {
		a.slice(p+"attn.to_q", p+"attention.qkv", 0, q)
		a.slice(p+"attn.to_k", p+"attention.qkv", q, kv)
		a.slice(p+"attn.to_v", p+"attention.qkv", q+kv, kv)
		a.to(p+"attn.to_out.0", p+"attention.out")
		a.to(p+"attn.norm_q", p+"attention.q_norm")
		a.to(p+"attn.norm_k", p+"attention.k_norm")
		for j := 1; j <= 3; j++ {
			a.to(p+"feed_forward.linear_"+itoaB(j), p+"feed_forward.w"+itoaB(j))
		}
		if modulated {
			a.to(p+"norm1.linear", p+"adaLN_modulation.1")
			a.to(p+"norm1.norm", p+"attention_norm1")
		} else {
			a.to(p+"norm1", p+"attention_norm1")
		}
		a.to(p+"norm2", p+"attention_norm2")
	}
	for i := 0; i < c.layers; i++ {
		block("layers."+itoaB(i)+".", true)
	}
	for i := 0; i < c.refiners; i++ {
		block("noise_refiner."+itoaB(i)+".", true)
		block("context_refiner."+itoaB(i)+".", false)
	}
	a.to("time_caption_embed.caption_embedder.0", "cap_embedder.0")
	a.to("time_caption_embed.caption_embedder.1", "cap_embedder.1")
	a.to("time_caption_embed.timestep_embedder.linear_1", "t_embedder.mlp.0")
	a.to("time_caption_embed.timestep_embedder.linear_2", "t_embedder.mlp.2")
	a.to("norm_out.linear_1", "final_layer.adaLN_modulation.1")
	a.to("norm_out.linear_2", "final_layer.linear")
	nextDiTComfyAliasesB(&a, c.layers, c.refiners, q, kv)
	return a.as
}

func detectLumina2(v View) (bool, string) {
	ok, z, ev := detectNextDiTB(v)
	if !ok || z {
		return false, ""
	}
	variant := "Lumina-Image 2.0"
	if v.Has("clip_text_pooled_proj.0.weight") {
		variant = "NewBie (Lumina2 with pooled CLIP)"
	}
	return true, ev + "; layers.0.adaLN_modulation.1 (Lumina2 modulation); " + variant
}

func init() {
	Register(&Arch{
		ID:                "lumina2",
		Name:              "Lumina-Image 2.0",
		Part:              DiT,
		Priority:          44,
		Params:            lumina2Params,
		Aliases:           lumina2Aliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: LLM, Comfy: "gemma2_2b", CheckpointPrefix: "text_encoders.gemma2_2b.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		VAE:             func(s Size) []Param { return VAEParams(s, 16, false) },
		Detect:          detectLumina2,
		ModelSpec:       "lumina-2",
		KohyaVersion:    "lumina2",
	})
}
