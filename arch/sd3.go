package arch

import "strconv"

// Stable Diffusion 3 / 3.5 (MMDiT). Full is SD3.5 Large exactly as
// sd3.5_large.safetensors stores it: 38 joint blocks, hidden 2432
// (64 × depth, 38 heads of 64), MLP 4 × hidden, RMS qk-norm (attn.ln_q /
// ln_k), pos_embed 192 × 192, the last block's context_block pre-only
// (adaLN 2 × hidden, qkv and qk-norm, no proj or MLP).
//
// SD3 Medium (24 blocks, hidden 1536, no qk-norm) uses a subset of these
// names. SD3.5 Medium additionally has x_block.attn2 (a second, image-only
// self-attention: qkv, ln_q, ln_k, proj; adaLN 9 × hidden) in its first 13
// blocks; Large has none, so Full has no attn2 tensors. The variants below
// (sd3Variants) carry each model's own table; the attn2 parameters and
// their diffusers aliases come from SD3.5 Medium's.

type sd3Dims struct {
	hidden, heads, depth int64
	posN                 int64 // pos_embed positions (max_size²)
	ctx, adm             int64 // context_embedder and y_embedder inputs
	qk                   bool  // RMS qk-norm (attn.ln_q / ln_k): SD3.5
	attn2                int64 // blocks 0..attn2-1 have x_block.attn2 (SD3.5 Medium)
}

var (
	sd3Full = sd3Dims{hidden: 2432, heads: 38, depth: 38, posN: 192 * 192, ctx: 4096, adm: 2048, qk: true}
	// Tiny: y_embedder input = Tiny CLIP-L + CLIP-G pooled widths (16 + 16)
	sd3Tiny = sd3Dims{hidden: 32, heads: 2, depth: 38, posN: 8 * 8, ctx: 16, adm: 32, qk: true}
	// SD3 Medium: 24 × 64 wide, pos_embed_max_size 192, no qk-norm.
	sd3Medium = sd3Dims{hidden: 1536, heads: 24, depth: 24, posN: 192 * 192, ctx: 4096, adm: 2048}
	// SD3.5 Medium: 24 × 64 wide, pos_embed_max_size 384, qk-norm, attn2
	// (dual attention) in blocks 0-12.
	sd35Medium = sd3Dims{hidden: 1536, heads: 24, depth: 24, posN: 384 * 384, ctx: 4096, adm: 2048, qk: true, attn2: 13}
)

func sd3Params(s Size) []Param {
	if s == Tiny {
		return sd3Table(sd3Tiny)
	}
	return sd3Table(sd3Full)
}

// sd3Table is the MMDiT(-X) parameter table for one set of dimensions.
func sd3Table(d sd3Dims) []Param {
	h, hd := d.hidden, d.hidden/d.heads
	var l mmParams
	l.add("x_embedder.proj.weight", h, 16, 2, 2)
	l.add("x_embedder.proj.bias", h)
	l.linear("t_embedder.mlp.0", h, 256, true)
	l.linear("t_embedder.mlp.2", h, h, true)
	l.linear("y_embedder.mlp.0", h, d.adm, true)
	l.linear("y_embedder.mlp.2", h, h, true)
	l.linear("context_embedder", h, d.ctx, true)
	l.add("pos_embed", 1, d.posN, h)
	for i := int64(0); i < d.depth; i++ {
		last := i == d.depth-1
		p := "joint_blocks." + strconv.FormatInt(i, 10) + "."
		for _, b := range []string{"context_block.", "x_block."} {
			pre := last && b == "context_block."
			dual := b == "x_block." && i < d.attn2
			l.linear(p+b+"attn.qkv", 3*h, h, true)
			if d.qk {
				l.add(p+b+"attn.ln_q.weight", hd)
				l.add(p+b+"attn.ln_k.weight", hd)
			}
			switch {
			case pre:
				l.linear(p+b+"adaLN_modulation.1", 2*h, h, true)
			case dual:
				l.linear(p+b+"attn.proj", h, h, true)
				l.linear(p+b+"attn2.qkv", 3*h, h, true)
				l.add(p+b+"attn2.ln_q.weight", hd)
				l.add(p+b+"attn2.ln_k.weight", hd)
				l.linear(p+b+"attn2.proj", h, h, true)
				l.linear(p+b+"mlp.fc1", 4*h, h, true)
				l.linear(p+b+"mlp.fc2", h, 4*h, true)
				l.linear(p+b+"adaLN_modulation.1", 9*h, h, true)
			default:
				l.linear(p+b+"attn.proj", h, h, true)
				l.linear(p+b+"mlp.fc1", 4*h, h, true)
				l.linear(p+b+"mlp.fc2", h, 4*h, true)
				l.linear(p+b+"adaLN_modulation.1", 6*h, h, true)
			}
		}
	}
	l.linear("final_layer.linear", 2*2*16, h, true)
	l.linear("final_layer.adaLN_modulation.1", 2*h, h, true)
	return l.ps
}

// sd3Aliases is ComfyUI's mmdit_to_diffusers (depth 38, q/k/v slices of
// 64 × depth = hidden rows) without the last block's context-side
// proj/MLP, which do not exist. The attn2 entries address SD3.5 Medium's
// parameters, so their slices are of its width (1536).
func sd3Aliases() []Alias {
	d := sd3Full
	h := d.hidden
	var l mmAliases
	for i := int64(0); i < sd35Medium.attn2; i++ {
		f := "transformer_blocks." + strconv.FormatInt(i, 10) + "."
		t := "joint_blocks." + strconv.FormatInt(i, 10) + ".x_block."
		l.qkvSlices(f+"attn2.to_q", f+"attn2.to_k", f+"attn2.to_v", t+"attn2.qkv", sd35Medium.hidden)
		l.add(f+"attn2.to_out.0", t+"attn2.proj")
		l.add(f+"attn2.norm_q", t+"attn2.ln_q")
		l.add(f+"attn2.norm_k", t+"attn2.ln_k")
	}
	for i := int64(0); i < d.depth; i++ {
		last := i == d.depth-1
		f := "transformer_blocks." + strconv.FormatInt(i, 10) + "."
		t := "joint_blocks." + strconv.FormatInt(i, 10) + "."
		l.qkvSlices(f+"attn.to_q", f+"attn.to_k", f+"attn.to_v", t+"x_block.attn.qkv", h)
		l.qkvSlices(f+"attn.add_q_proj", f+"attn.add_k_proj", f+"attn.add_v_proj", t+"context_block.attn.qkv", h)
		if last {
			// diffusers' norm1_context of the last block is an
			// AdaLayerNormContinuous: (scale, shift) vs native (shift, scale)
			l.swap(f+"norm1_context.linear", t+"context_block.adaLN_modulation.1")
		} else {
			l.add(f+"norm1_context.linear", t+"context_block.adaLN_modulation.1")
			l.add(f+"attn.to_add_out", t+"context_block.attn.proj")
			l.add(f+"ff_context.net.0.proj", t+"context_block.mlp.fc1")
			l.add(f+"ff_context.net.2", t+"context_block.mlp.fc2")
		}
		l.add(f+"attn.norm_added_q", t+"context_block.attn.ln_q")
		l.add(f+"attn.norm_added_k", t+"context_block.attn.ln_k")
		l.add(f+"norm1.linear", t+"x_block.adaLN_modulation.1")
		l.add(f+"attn.to_out.0", t+"x_block.attn.proj")
		l.add(f+"attn.norm_q", t+"x_block.attn.ln_q")
		l.add(f+"attn.norm_k", t+"x_block.attn.ln_k")
		l.add(f+"ff.net.0.proj", t+"x_block.mlp.fc1")
		l.add(f+"ff.net.2", t+"x_block.mlp.fc2")
	}
	l.add("pos_embed.proj", "x_embedder.proj")
	l.add("pos_embed.pos_embed", "pos_embed")
	l.add("context_embedder", "context_embedder")
	l.add("time_text_embed.timestep_embedder.linear_1", "t_embedder.mlp.0")
	l.add("time_text_embed.timestep_embedder.linear_2", "t_embedder.mlp.2")
	l.add("time_text_embed.text_embedder.linear_1", "y_embedder.mlp.0")
	l.add("time_text_embed.text_embedder.linear_2", "y_embedder.mlp.2")
	l.swap("norm_out.linear", "final_layer.adaLN_modulation.1")
	l.add("proj_out", "final_layer.linear")
	return l.as
}

// sd3Detect: model_detection.py's MMDiT key; depth, qk-norm and attn2 tell
// the variant.
func sd3Detect(v View) (bool, string) {
	const key = "joint_blocks.0.context_block.attn.qkv.weight"
	if !v.Has(key) || len(v.Shape("x_embedder.proj.weight")) != 4 {
		return false, ""
	}
	depth := v.Count("joint_blocks.")
	h := mmDim(v, "x_embedder.proj.weight", 0)
	ev := key + " + " + mmWithShape(v, "x_embedder.proj.weight") + " + " + strconv.Itoa(depth) + " joint_blocks"
	qk := v.Has("joint_blocks.0.context_block.attn.ln_q.weight")
	attn2 := v.Has("joint_blocks.0.x_block.attn2.qkv.weight")
	var variant string
	switch {
	case attn2:
		ev += " + x_block.attn2"
		variant = "SD3.5 Medium"
	case qk && depth == 38 && h == 2432:
		ev += " + attn.ln_q"
		variant = "SD3.5 Large"
	case qk:
		ev += " + attn.ln_q"
		variant = "SD3.5"
	case depth == 24 && h == 1536:
		variant = "SD3 Medium"
	default:
		variant = "SD3"
	}
	return true, ev + ": " + variant
}

// sd3Source is where the SD3 widths were checked.
const sd3Source = "ComfyUI comfy/model_detection.py @006dd0ae (depth = x_embedder rows / 64, qk_norm from ln_q, x_block_self_attn_layers from attn2 keys); " +
	"diffusers src/diffusers/models/transformers/sd3_transformer_2d.py @19f35ad5 (dual_attention_layers, 9-way SD35AdaLayerNormZeroX)"

func init() {
	registerVariants("sd3",
		Variant{Name: "SD3 Medium", Width: 1536, Depth: "24 joint blocks", Source: sd3Source,
			Params: func() []Param { return sd3Table(sd3Medium) }},
		Variant{Name: "SD3.5 Medium", Width: 1536, Depth: "24 joint blocks", Only: "x_block.attn2 (qkv, ln_q, ln_k, proj) and 9-way adaLN in blocks 0-12; attn.ln_q/ln_k; pos_embed 384²",
			Source: sd3Source, Params: func() []Param { return sd3Table(sd35Medium) }, Adds: true},
		Variant{Name: "SD3.5 Large", Width: 2432, Depth: "38 joint blocks", Only: "attn.ln_q/ln_k (qk-norm)", Source: sd3Source,
			Params: func() []Param { return sd3Table(sd3Full) }},
	)
	Register(&Arch{
		ID:                "sd3",
		Name:              "Stable Diffusion 3 / 3.5",
		Part:              DiT,
		Priority:          20,
		Params:            sd3Params,
		Aliases:           sd3Aliases,
		DiffusersPrefixes: []string{"transformer.", "base_model.model."},
		Encoders: []Encoder{
			{Part: CLIPL, Comfy: "clip_l", Kohya: []string{"lora_te1_"}, Diffusers: []string{"text_encoder."},
				Model: CLIPLParams, CheckpointPrefix: "text_encoders.clip_l.transformer."},
			{Part: CLIPG, Comfy: "clip_g", Kohya: []string{"lora_te2_"}, Diffusers: []string{"text_encoder_2."},
				Model: CLIPGParams, CheckpointPrefix: "text_encoders.clip_g.transformer."},
			{Part: T5, Comfy: "t5xxl", Kohya: []string{"lora_te3_"}, Diffusers: []string{"text_encoder_3."},
				Model: T5XXLParams, CheckpointPrefix: "text_encoders.t5xxl.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "first_stage_model.",
		// sd3.5_large.safetensors' first_stage_model has no quant_conv
		VAE:       func(s Size) []Param { return VAEParams(s, 16, false) },
		Detect:    sd3Detect,
		ModelSpec: "stable-diffusion-3-medium",
	})
}
