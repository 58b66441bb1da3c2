package arch

import "strconv"

// FLUX.2 (Black Forest Labs). Full describes FLUX.2-dev: 8 double-stream +
// 48 single-stream blocks, hidden 6144 (48 heads × 128), SwiGLU MLPs of
// width 3 × hidden (the first MLP linear outputs gate and value, 2 × 18432
// rows), no biases anywhere, modulation shared by all blocks
// (double_stream_modulation_img/txt, single_stream_modulation), patch 1 on
// 128 latent channels, txt_in over three stacked Mistral-3 layers
// (3 × 5120 = 15360). FLUX.2-klein 9B (hidden 4096, 8/24 blocks, context
// 12288) and 4B (hidden 3072, 5/20 blocks, context 7680) have the same
// names, a subset of dev's blocks and no guidance_in.

type flux2Dims struct {
	hidden, heads, mlp int64 // mlp: SwiGLU hidden width (3 × hidden)
	inCh, ctx          int64
	nDouble, nSingle   int
	noGuidance         bool // klein: no guidance_in
}

var (
	flux2Full = flux2Dims{hidden: 6144, heads: 48, mlp: 18432, inCh: 128, ctx: 15360, nDouble: 8, nSingle: 48}
	flux2Tiny = flux2Dims{hidden: 32, heads: 2, mlp: 96, inCh: 128, ctx: 48, nDouble: 8, nSingle: 48}
	// klein: 128-wide heads, mlp 3 × hidden, context = 3 stacked Qwen3
	// layers (3 × 4096 for 9B's Qwen3-8B, 3 × 2560 for 4B's Qwen3-4B)
	flux2Klein9B = flux2Dims{hidden: 4096, heads: 32, mlp: 12288, inCh: 128, ctx: 12288, nDouble: 8, nSingle: 24, noGuidance: true}
	flux2Klein4B = flux2Dims{hidden: 3072, heads: 24, mlp: 9216, inCh: 128, ctx: 7680, nDouble: 5, nSingle: 20, noGuidance: true}
)

func flux2Params(s Size) []Param {
	if s == Tiny {
		return flux2Table(flux2Tiny)
	}
	return flux2Table(flux2Full)
}

// flux2Table is one FLUX.2 model's table.
func flux2Table(d flux2Dims) []Param {
	h, hd := d.hidden, d.hidden/d.heads
	var l mmParams
	l.linear("img_in", h, d.inCh, false)
	l.linear("time_in.in_layer", h, 256, false)
	l.linear("time_in.out_layer", h, h, false)
	l.linear("txt_in", h, d.ctx, false)
	if !d.noGuidance {
		l.linear("guidance_in.in_layer", h, 256, false)
		l.linear("guidance_in.out_layer", h, h, false)
	}
	for i := 0; i < d.nDouble; i++ {
		p := "double_blocks." + mmI(i) + "."
		for _, s := range []string{"img", "txt"} {
			l.linear(p+s+"_attn.qkv", 3*h, h, false)
			l.add(p+s+"_attn.norm.query_norm.scale", hd)
			l.add(p+s+"_attn.norm.key_norm.scale", hd)
			l.linear(p+s+"_attn.proj", h, h, false)
			l.linear(p+s+"_mlp.0", 2*d.mlp, h, false)
			l.linear(p+s+"_mlp.2", h, d.mlp, false)
		}
	}
	for i := 0; i < d.nSingle; i++ {
		p := "single_blocks." + mmI(i) + "."
		l.linear(p+"linear1", 3*h+2*d.mlp, h, false)
		l.linear(p+"linear2", h, h+d.mlp, false)
		l.add(p+"norm.query_norm.scale", hd)
		l.add(p+"norm.key_norm.scale", hd)
	}
	l.linear("double_stream_modulation_img.lin", 6*h, h, false)
	l.linear("double_stream_modulation_txt.lin", 6*h, h, false)
	l.linear("single_stream_modulation.lin", 3*h, h, false)
	l.linear("final_layer.linear", d.inCh, h, false)
	l.linear("final_layer.adaLN_modulation.1", 2*h, h, false)
	return l.ps
}

// flux2Aliases: diffusers' Flux2Transformer2DModel names, plus the entries
// of ComfyUI's Flux map (which it applies to Flux.2 too) whose targets
// exist. The Flux.1 proj_mlp slice (3H, 4H) does not fit the SwiGLU
// linear1 and is left out; diffusers has no proj_mlp for Flux.2 (its
// single blocks fuse everything into attn.to_qkv_mlp_proj).
func flux2Aliases() []Alias {
	h := flux2Full.hidden
	var l mmAliases
	for i := 0; i < flux2Full.nDouble; i++ {
		f, t := "transformer_blocks."+mmI(i)+".", "double_blocks."+mmI(i)+"."
		l.qkvSlices(f+"attn.to_q", f+"attn.to_k", f+"attn.to_v", t+"img_attn.qkv", h)
		l.qkvSlices(f+"attn.add_q_proj", f+"attn.add_k_proj", f+"attn.add_v_proj", t+"txt_attn.qkv", h)
		l.add(f+"attn.to_out.0", t+"img_attn.proj")
		l.add(f+"attn.to_add_out", t+"txt_attn.proj")
		l.add(f+"ff.linear_in", t+"img_mlp.0")
		l.add(f+"ff.linear_out", t+"img_mlp.2")
		l.add(f+"ff_context.linear_in", t+"txt_mlp.0")
		l.add(f+"ff_context.linear_out", t+"txt_mlp.2")
		l.add(f+"ff.net.0.proj", t+"img_mlp.0")
		l.add(f+"ff.net.2", t+"img_mlp.2")
		l.add(f+"ff_context.net.0.proj", t+"txt_mlp.0")
		l.add(f+"ff_context.net.2", t+"txt_mlp.2")
		l.add(f+"attn.norm_q", t+"img_attn.norm.query_norm")
		l.add(f+"attn.norm_k", t+"img_attn.norm.key_norm")
		l.add(f+"attn.norm_added_q", t+"txt_attn.norm.query_norm")
		l.add(f+"attn.norm_added_k", t+"txt_attn.norm.key_norm")
	}
	for i := 0; i < flux2Full.nSingle; i++ {
		f, t := "single_transformer_blocks."+mmI(i)+".", "single_blocks."+mmI(i)+"."
		l.add(f+"attn.to_qkv_mlp_proj", t+"linear1")
		l.add(f+"attn.to_out", t+"linear2")
		l.qkvSlices(f+"attn.to_q", f+"attn.to_k", f+"attn.to_v", t+"linear1", h)
		l.add(f+"proj_out", t+"linear2")
		l.add(f+"attn.norm_q", t+"norm.query_norm")
		l.add(f+"attn.norm_k", t+"norm.key_norm")
		l.slice(t+"linear1_qkv", t+"linear1", 0, 3*h)
	}
	l.add("x_embedder", "img_in")
	l.add("context_embedder", "txt_in")
	for _, te := range []string{"time_guidance_embed.", "time_text_embed."} {
		l.add(te+"timestep_embedder.linear_1", "time_in.in_layer")
		l.add(te+"timestep_embedder.linear_2", "time_in.out_layer")
		l.add(te+"guidance_embedder.linear_1", "guidance_in.in_layer")
		l.add(te+"guidance_embedder.linear_2", "guidance_in.out_layer")
	}
	l.add("double_stream_modulation_img.linear", "double_stream_modulation_img.lin")
	l.add("double_stream_modulation_txt.linear", "double_stream_modulation_txt.lin")
	l.add("single_stream_modulation.linear", "single_stream_modulation.lin")
	l.swap("norm_out.linear", "final_layer.adaLN_modulation.1")
	l.add("proj_out", "final_layer.linear")
	return l.as
}

// flux2Detect: the Flux family's qk-norm scale and img_in plus the shared
// double_stream_modulation_img (model_detection.py); the variant follows
// from txt_in's input width (three stacked text-encoder layers).
func flux2Detect(v View) (bool, string) {
	const key = "double_blocks.0.img_attn.norm.key_norm.scale"
	const mod = "double_stream_modulation_img.lin.weight"
	if !v.Has(key) || !v.Has(mod) || len(v.Shape("img_in.weight")) != 2 {
		return false, ""
	}
	ev := key + " + " + mmWithShape(v, "img_in.weight") + " + " + mod
	variant := "FLUX.2"
	if v.Has("txt_in.weight") {
		ev += " + " + mmWithShape(v, "txt_in.weight")
		switch c := mmDim(v, "txt_in.weight", 1); c {
		case 15360:
			variant = "FLUX.2-dev"
		case 12288:
			variant = "FLUX.2-klein 9B"
		case 7680:
			variant = "FLUX.2-klein 4B"
		default:
			variant = "FLUX.2 (context " + strconv.FormatInt(c, 10) + ")"
		}
	}
	return true, ev + ": " + variant
}

// flux2Source is where the FLUX.2 widths were checked.
const flux2Source = "diffusers src/diffusers/models/transformers/transformer_flux2.py @0047da10 (Flux2Transformer2DModel: 128-wide heads, mlp_ratio 3 SwiGLU, shared modulations); " +
	"per-model configs (dev 48 heads 8+48 blocks joint 15360 guidance; klein 4B 24 heads 5+20 joint 7680; klein 9B 32 heads 8+24 joint 12288; klein without guidance) " +
	"as VincentGourbin/flux-2-swift-mlx Sources/Flux2Core/Configuration/Flux2Config.swift @15dbdd52 mirrors them"

func init() {
	registerVariants("flux2",
		Variant{Name: "FLUX.2 dev", Width: 6144, Depth: "8 double + 48 single blocks", Only: "guidance_in", Source: flux2Source,
			Params: func() []Param { return flux2Table(flux2Full) }},
		Variant{Name: "FLUX.2 klein 9B", Width: 4096, Depth: "8 double + 24 single blocks", Source: flux2Source,
			Params: func() []Param { return flux2Table(flux2Klein9B) }},
		Variant{Name: "FLUX.2 klein 4B", Width: 3072, Depth: "5 double + 20 single blocks", Source: flux2Source,
			Params: func() []Param { return flux2Table(flux2Klein4B) }},
	)
	Register(&Arch{
		ID:                "flux2",
		Name:              "FLUX.2",
		Part:              DiT,
		Priority:          13,
		Params:            flux2Params,
		Aliases:           flux2Aliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			// Mistral-3 24B; LoRAs on it load only through the generic
			// text_encoders.<name>. form (no kohya prefix).
			{Part: LLM, Comfy: "mistral3_24b", Diffusers: []string{"text_encoder."},
				CheckpointPrefix: "text_encoders.mistral3_24b.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		// FLUX.2's autoencoder (32 latent channels, quant convs inside
		// encoder/decoder, batch-norm statistics) is not VAEParams' layout.
		VAE:       nil,
		Detect:    flux2Detect,
		ModelSpec: "flux-2-dev",
	})
}
