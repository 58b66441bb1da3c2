package arch

// Z-Image (Tongyi-MAI), a NextDiT like Lumina 2.0 run by ComfyUI's
// comfy/ldm/lumina/model.py with z_image_modulation: layers.N.attention.
// {qkv,out,q_norm,k_norm}, feed_forward.w1/w2/w3, attention_norm1/2,
// ffn_norm1/2, adaLN_modulation.0 (no SiLU in front, input 256), 2
// noise_refiner (modulated) + 2 context_refiner blocks, cap_embedder,
// t_embedder (1024 → 256), x_pad_token and cap_pad_token.
//
// Full is Z-Image (Turbo and Base share it, ≈6.15B parameters): dim 3840,
// 30 heads of 128 with 30 KV heads (qkv = 3 × 3840 rows), 30 layers, SwiGLU
// hidden 10240 (8/3 · dim), Qwen3-4B caption features (2560), in_channels
// 16, patch 2. Z-Image Omni's siglip_embedder/siglip_refiner are not in
// Full.

func zImageConfig(s Size) nextDiTB {
	if s == Tiny {
		return nextDiTB{dim: 32, heads: 2, kvHeads: 2, ffn: 96, capFeat: 16, in: 16, freq: 16, tHidden: 32, tOut: 16, layers: 30, refiners: 2, zImage: true}
	}
	return nextDiTB{dim: 3840, heads: 30, kvHeads: 30, ffn: 10240, capFeat: 2560, in: 16, freq: 256, tHidden: 1024, tOut: 256, layers: 30, refiners: 2, zImage: true}
}

func zImageParams(s Size) []Param { return nextDiTParamsB(zImageConfig(s)) }

// zImageAliases are the Z-Image diffusers names exactly as ComfyUI's
// z_image_to_diffusers maps them (q/k/v are equal thirds of qkv here).
// Lumina2's own diffusers names (attn.to_q, feed_forward.linear_1, ...)
// are deliberately absent.
func zImageAliases() []Alias {
	c := zImageConfig(Full)
	var a aliasesB
	nextDiTComfyAliasesB(&a, c.layers, c.refiners, c.dim, c.kvHeads*(c.dim/c.heads))
	return a.as
}

func detectZImage(v View) (bool, string) {
	ok, z, ev := detectNextDiTB(v)
	if !ok || !z {
		return false, ""
	}
	variant := "Z-Image"
	if v.Has("siglip_embedder.1.weight") {
		variant = "Z-Image Omni"
	}
	return true, ev + "; layers.0.adaLN_modulation.0 (z-image modulation); " + variant
}

func init() {
	Register(&Arch{
		ID:                "z-image",
		Name:              "Z-Image",
		Part:              DiT,
		Priority:          43,
		Params:            zImageParams,
		Aliases:           zImageAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: LLM, Comfy: "qwen3_4b", CheckpointPrefix: "text_encoders.qwen3_4b.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		VAE:             func(s Size) []Param { return VAEParams(s, 16, false) },
		Detect:          detectZImage,
		ModelSpec:       "Z-Image",
	})
}
