package arch

import "strconv"

// AuraFlow (fal, v0.1–v0.3; ComfyUI comfy/ldm/aura/mmdit.py): 4 joint
// (double) layers + 32 single layers, width 3072 (12 heads × 256), SwiGLU
// MLPs of width 8192 (find_multiple(2/3 × 4 × 3072, 256)), separate
// q/k/v/o projections, no biases except the timestep MLP and init_x_linear,
// no qk-norm weights, 8 register tokens, learned positional encoding of
// 1024 positions (max_seq; ComfyUI reads it from the file), SDXL VAE.

type auraDims struct {
	dim, mlp, cond, posN int64
	nDouble, nSingle     int
}

var (
	auraFull = auraDims{dim: 3072, mlp: 8192, cond: 2048, posN: 1024, nDouble: 4, nSingle: 32}
	// Tiny: cond_seq_linear input = Tiny T5 width 16
	auraTiny = auraDims{dim: 64, mlp: 256, cond: 16, posN: 16, nDouble: 4, nSingle: 32}
)

func auraParams(s Size) []Param {
	d := auraFull
	if s == Tiny {
		d = auraTiny
	}
	h := d.dim
	var l mmParams
	l.linear("t_embedder.mlp.0", h, 256, true)
	l.linear("t_embedder.mlp.2", h, h, true)
	l.linear("cond_seq_linear", h, d.cond, false)
	l.linear("init_x_linear", h, 2*2*4, true)
	l.add("positional_encoding", 1, d.posN, h)
	l.add("register_tokens", 1, 8, h)
	mlp := func(p string) {
		l.linear(p+".c_fc1", d.mlp, h, false)
		l.linear(p+".c_fc2", d.mlp, h, false)
		l.linear(p+".c_proj", h, d.mlp, false)
	}
	for i := 0; i < d.nDouble; i++ {
		p := "double_layers." + mmI(i) + "."
		mlp(p + "mlpC")
		l.linear(p+"modC.1", 6*h, h, false)
		mlp(p + "mlpX")
		l.linear(p+"modX.1", 6*h, h, false)
		for _, w := range []string{"w1q", "w1k", "w1v", "w1o", "w2q", "w2k", "w2v", "w2o"} {
			l.linear(p+"attn."+w, h, h, false)
		}
	}
	for i := 0; i < d.nSingle; i++ {
		p := "single_layers." + mmI(i) + "."
		l.linear(p+"modCX.1", 6*h, h, false)
		for _, w := range []string{"w1q", "w1k", "w1v", "w1o"} {
			l.linear(p+"attn."+w, h, h, false)
		}
		mlp(p + "mlp")
	}
	l.linear("final_linear", 2*2*4, h, false)
	l.linear("modF.1", 2*h, h, false)
	return l.ps
}

// auraAliases is ComfyUI's auraflow_to_diffusers at module level.
func auraAliases() []Alias {
	d := auraFull
	var l mmAliases
	ff := func(f, t string) {
		l.add(f+".linear_1", t+".c_fc1")
		l.add(f+".linear_2", t+".c_fc2")
		l.add(f+".out_projection", t+".c_proj")
	}
	for i := 0; i < d.nDouble; i++ {
		f, t := "joint_transformer_blocks."+mmI(i)+".", "double_layers."+mmI(i)+"."
		l.add(f+"attn.to_q", t+"attn.w2q")
		l.add(f+"attn.to_k", t+"attn.w2k")
		l.add(f+"attn.to_v", t+"attn.w2v")
		l.add(f+"attn.to_out.0", t+"attn.w2o")
		l.add(f+"attn.add_q_proj", t+"attn.w1q")
		l.add(f+"attn.add_k_proj", t+"attn.w1k")
		l.add(f+"attn.add_v_proj", t+"attn.w1v")
		l.add(f+"attn.to_add_out", t+"attn.w1o")
		ff(f+"ff", t+"mlpX")
		ff(f+"ff_context", t+"mlpC")
		l.add(f+"norm1.linear", t+"modX.1")
		l.add(f+"norm1_context.linear", t+"modC.1")
	}
	for i := 0; i < d.nSingle; i++ {
		f, t := "single_transformer_blocks."+mmI(i)+".", "single_layers."+mmI(i)+"."
		l.add(f+"attn.to_q", t+"attn.w1q")
		l.add(f+"attn.to_k", t+"attn.w1k")
		l.add(f+"attn.to_v", t+"attn.w1v")
		l.add(f+"attn.to_out.0", t+"attn.w1o")
		l.add(f+"norm1.linear", t+"modCX.1")
		ff(f+"ff", t+"mlp")
	}
	l.add("pos_embed.pos_embed", "positional_encoding")
	l.add("register_tokens", "register_tokens")
	l.add("time_step_proj.linear_1", "t_embedder.mlp.0")
	l.add("time_step_proj.linear_2", "t_embedder.mlp.2")
	l.add("context_embedder", "cond_seq_linear")
	l.add("pos_embed.proj", "init_x_linear")
	l.add("proj_out", "final_linear")
	l.swap("norm_out.linear", "modF.1")
	return l.as
}

// auraDetect: model_detection.py's AuraFlow key.
func auraDetect(v View) (bool, string) {
	const key = "double_layers.0.attn.w1q.weight"
	if !v.Has(key) {
		return false, ""
	}
	ev := key + " + " + strconv.Itoa(v.Count("double_layers.")) + " double_layers + " +
		strconv.Itoa(v.Count("single_layers.")) + " single_layers"
	if v.Has("cond_seq_linear.weight") {
		ev += " + " + mmWithShape(v, "cond_seq_linear.weight")
	}
	return true, ev + ": AuraFlow"
}

func init() {
	Register(&Arch{
		ID:                "auraflow",
		Name:              "AuraFlow",
		Part:              DiT,
		Priority:          30,
		Params:            auraParams,
		Aliases:           auraAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			// Pile-T5-XL (UL2 tokenizer); ComfyUI's lora_teN_ rule only
			// covers t5xxl, so no kohya prefix.
			{Part: T5, Comfy: "pile_t5xl", Diffusers: []string{"text_encoder."},
				CheckpointPrefix: "text_encoders.pile_t5xl.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		// the SDXL VAE (4 latent channels, with quant_conv)
		VAE:       func(s Size) []Param { return VAEParams(s, 4, true) },
		Detect:    auraDetect,
		ModelSpec: "auraflow",
	})
}
