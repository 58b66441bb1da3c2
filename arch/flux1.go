package arch

import "strconv"

// FLUX.1 (Black Forest Labs): 19 double-stream + 38 single-stream blocks,
// hidden 3072 (24 heads × 128), MLP 12288, qkv with bias, per-block
// modulation. Full describes FLUX.1-dev, including guidance_in, which
// FLUX.1-schnell lacks, so that LoRAs for either variant resolve; Kontext
// has exactly dev's tensors; Fill (img_in input 384) and the full
// Canny/Depth models (input 128) differ only in img_in's input width.

var flux1Dims = mmFlux{hidden: 3072, heads: 24, mlp: 12288, inCh: 64, outCh: 64,
	ctx: 4096, vec: 768, nDouble: 19, single: 38}

// Tiny keeps the MLP ratio so that the fused linear1 slices scale with the
// hidden width; txt_in/vector_in inputs match the Tiny T5 and CLIP-L widths.
var flux1Tiny = mmFlux{hidden: 32, heads: 2, mlp: 128, inCh: 64, outCh: 64,
	ctx: 16, vec: 16, nDouble: 19, single: 38}

func flux1Params(s Size) []Param {
	if s == Tiny {
		return flux1Table(flux1Tiny, true)
	}
	return flux1Table(flux1Dims, true)
}

// flux1Table is one FLUX.1 model's table; guidance adds guidance_in
// (dev, Kontext, Fill, Canny/Depth; not schnell).
func flux1Table(d mmFlux, guidance bool) []Param {
	h := d.hidden
	var l mmParams
	l.linear("img_in", h, d.inCh, true)
	l.linear("time_in.in_layer", h, 256, true)
	l.linear("time_in.out_layer", h, h, true)
	l.linear("vector_in.in_layer", h, d.vec, true)
	l.linear("vector_in.out_layer", h, h, true)
	if guidance {
		l.linear("guidance_in.in_layer", h, 256, true)
		l.linear("guidance_in.out_layer", h, h, true)
	}
	l.linear("txt_in", h, d.ctx, true)
	for i := 0; i < d.nDouble; i++ {
		d.doubleBlock(&l, "double_blocks."+mmI(i)+".", true)
	}
	for i := 0; i < d.single; i++ {
		d.singleBlock(&l, "single_blocks."+mmI(i)+".", true)
	}
	l.linear("final_layer.linear", d.outCh, h, true)
	l.linear("final_layer.adaLN_modulation.1", 2*h, h, true)
	return l.ps
}

func flux1Aliases() []Alias {
	var l mmAliases
	mmFluxAliases(&l, flux1Dims.nDouble, flux1Dims.single, flux1Dims.hidden, true)
	return l.as
}

// flux1Detect follows model_detection.py: the Flux family's qk-norm scale
// plus img_in; Chroma (distilled_guidance_layer), Flux.2 (shared
// double_stream_modulation_img) and Ovis-style gated MLPs are other
// architectures. Variants are told by img_in's input width and guidance_in.
func flux1Detect(v View) (bool, string) {
	const key = "double_blocks.0.img_attn.norm.key_norm.scale"
	if !v.Has(key) || len(v.Shape("img_in.weight")) != 2 {
		return false, ""
	}
	if _, chroma := mmHasAny(v, "distilled_guidance_layer.norms.0.scale", "distilled_guidance_layer.0.norms.0.scale"); chroma {
		return false, ""
	}
	if v.Has("double_stream_modulation_img.lin.weight") || v.Has("double_blocks.0.img_mlp.gate_proj.weight") {
		return false, ""
	}
	if !v.Has("double_blocks.0.img_mod.lin.weight") {
		return false, ""
	}
	h := mmDim(v, "img_in.weight", 0)
	if q := mmDim(v, "double_blocks.0.img_attn.qkv.weight", 0); q != -1 && q != 3*h {
		return false, ""
	}
	// linear1 = 3H + 4H: rules out SwiGLU single blocks (3H + 6H)
	if r := mmDim(v, "single_blocks.0.linear1.weight", 0); r != -1 && r != 7*h {
		return false, ""
	}
	ev := key + " + " + mmWithShape(v, "img_in.weight")
	variant := "FLUX.1-dev/Kontext"
	if v.Has("guidance_in.in_layer.weight") {
		ev += " + guidance_in.in_layer.weight"
	} else {
		variant = "FLUX.1-schnell"
	}
	switch in := mmDim(v, "img_in.weight", 1); in {
	case 64:
	case 384:
		variant = "FLUX.1-Fill (inpaint, in_channels 96)"
	case 128:
		variant = "FLUX.1-Canny/Depth (in_channels 32)"
	default:
		variant += " (img_in input " + strconv.FormatInt(in, 10) + ")"
	}
	return true, ev + ": " + variant
}

// flux1Source is where the FLUX.1 widths were checked.
const flux1Source = "ComfyUI comfy/model_detection.py @006dd0ae (hidden 3072, 24 heads, mlp_ratio 4, in_channels = img_in inputs / 4, guidance_embed from guidance_in); " +
	"diffusers src/diffusers/models/transformers/transformer_flux.py @376297a7 (FluxTransformer2DModel)"

func init() {
	withIn := func(in int64) mmFlux { d := flux1Dims; d.inCh = in; return d }
	registerVariants("flux1",
		Variant{Name: "FLUX.1 dev", Width: 3072, Depth: "19 double + 38 single blocks", Only: "guidance_in", Source: flux1Source,
			Params: func() []Param { return flux1Table(flux1Dims, true) }},
		Variant{Name: "FLUX.1 Kontext", Width: 3072, Depth: "19 double + 38 single blocks", Only: "guidance_in (same tensors as dev)", Source: flux1Source,
			Params: func() []Param { return flux1Table(flux1Dims, true) }},
		Variant{Name: "FLUX.1 schnell", Width: 3072, Depth: "19 double + 38 single blocks", Only: "no guidance_in", Source: flux1Source,
			Params: func() []Param { return flux1Table(flux1Dims, false) }},
		Variant{Name: "FLUX.1 Fill", Width: 3072, Depth: "19 double + 38 single blocks", Only: "img_in [3072, 384] (96 input channels)", Source: flux1Source,
			Params: func() []Param { return flux1Table(withIn(384), true) }},
		Variant{Name: "FLUX.1 Canny/Depth", Width: 3072, Depth: "19 double + 38 single blocks", Only: "img_in [3072, 128] (32 input channels)", Source: flux1Source,
			Params: func() []Param { return flux1Table(withIn(128), true) }},
	)
	Register(&Arch{
		ID:                "flux1",
		Name:              "FLUX.1",
		Part:              DiT,
		Priority:          10,
		Params:            flux1Params,
		Aliases:           flux1Aliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: CLIPL, Comfy: "clip_l", Kohya: []string{"lora_te1_"}, Diffusers: []string{"text_encoder."},
				Model: CLIPLParams, CheckpointPrefix: "text_encoders.clip_l.transformer."},
			{Part: T5, Comfy: "t5xxl", Kohya: []string{"lora_te2_", "lora_te3_"}, Diffusers: []string{"text_encoder_2."},
				Model: T5XXLParams, CheckpointPrefix: "text_encoders.t5xxl.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		VAE:             func(s Size) []Param { return VAEParams(s, 16, false) },
		Detect:          flux1Detect,
		ModelSpec:       "flux-1-dev",
		KohyaVersion:    "flux1",
	})
}
