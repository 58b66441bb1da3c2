package arch

import "fmt"

// HiDream-I1 (HiDream.ai), whose native names are the diffusers names
// (comfy/ldm/hidream/model.py mirrors HiDreamImageTransformer2DModel):
// double_stream_blocks.N.block.{adaLN_modulation.1, attn1.{to_q,to_k,to_v,
// to_out,q_rms_norm,k_rms_norm}, attn1.*_t (text stream), ff_i (MoE:
// shared_experts + experts.M + gate), ff_t}, single_stream_blocks.N.block.*
// (image stream only), caption_projection.N.linear, t_embedder, p_embedder,
// x_embedder.proj and final_layer.
//
// Full is HiDream-I1 (Full/Dev/Fast share it, ≈17.1B parameters): 20 heads
// of 128 (dim 2560), 16 double + 32 single blocks, 4 routed experts (SwiGLU
// hidden 6912) + a shared expert (3584), caption channels 4096 (T5-XXL and
// Llama-3.1-8B layers: 48 per-block projections + 1 for T5), pooled CLIP
// dim 2048 (CLIP-L 768 + CLIP-G 1280), in/out channels 16, patch 2.

type hidreamDimsB struct {
	dim, headDim, caption, pooled, in, out, freq, multipleOf int64
	double, single, experts                                  int
}

func hidreamDims(s Size) hidreamDimsB {
	if s == Tiny {
		return hidreamDimsB{dim: 32, headDim: 16, caption: 32, pooled: 16, in: 16, out: 16, freq: 16, multipleOf: 16, double: 16, single: 32, experts: 4}
	}
	return hidreamDimsB{dim: 2560, headDim: 128, caption: 4096, pooled: 2048, in: 16, out: 16, freq: 256, multipleOf: 256, double: 16, single: 32, experts: 4}
}

// hidreamSwiGLUB is the hidden width of HiDream's FeedForwardSwiGLU for a
// nominal hidden_dim: 2/3 of it, rounded up to a multiple.
func hidreamSwiGLUB(hidden, multipleOf int64) int64 {
	h := 2 * hidden / 3
	return multipleOf * ((h + multipleOf - 1) / multipleOf)
}

func hidreamParams(s Size) []Param {
	d := hidreamDims(s)
	c := d.dim
	var t tableB
	t.linear("t_embedder.timestep_embedder.linear_1", c, d.freq, true)
	t.linear("t_embedder.timestep_embedder.linear_2", c, c, true)
	t.linear("p_embedder.pooled_embedder.linear_1", c, d.pooled, true)
	t.linear("p_embedder.pooled_embedder.linear_2", c, c, true)
	t.linear("x_embedder.proj", c, d.in*4, true)
	swiglu := func(p string, hidden int64) {
		t.linear(p+".w1", hidden, c, false)
		t.linear(p+".w2", c, hidden, false)
		t.linear(p+".w3", hidden, c, false)
	}
	expert := hidreamSwiGLUB(4*c, d.multipleOf)
	shared := hidreamSwiGLUB(2*c, d.multipleOf)
	moe := func(p string) {
		swiglu(p+".shared_experts", shared)
		for e := 0; e < d.experts; e++ {
			swiglu(p+".experts."+itoaB(e), expert)
		}
		t.add(p+".gate.weight", int64(d.experts), c)
	}
	attn := func(p, sfx string) {
		for _, m := range []string{"to_q", "to_k", "to_v", "to_out"} {
			t.linear(p+m+sfx, c, c, true)
		}
		t.weight(p+"q_rms_norm"+sfx, c)
		t.weight(p+"k_rms_norm"+sfx, c)
	}
	for i := 0; i < d.double; i++ {
		p := "double_stream_blocks." + itoaB(i) + ".block."
		t.linear(p+"adaLN_modulation.1", 12*c, c, true)
		attn(p+"attn1.", "")
		attn(p+"attn1.", "_t")
		moe(p + "ff_i")
		swiglu(p+"ff_t", expert)
	}
	for i := 0; i < d.single; i++ {
		p := "single_stream_blocks." + itoaB(i) + ".block."
		t.linear(p+"adaLN_modulation.1", 6*c, c, true)
		attn(p+"attn1.", "")
		moe(p + "ff_i")
	}
	t.linear("final_layer.linear", 4*d.out, c, true)
	t.linear("final_layer.adaLN_modulation.1", 2*c, c, true)
	for i := 0; i <= d.double+d.single; i++ {
		t.linear("caption_projection."+itoaB(i)+".linear", c, d.caption, false)
	}
	return t.ps
}

// hidreamAliases is empty: diffusers, SimpleTuner, OneTrainer and ai-toolkit
// HiDream LoRAs use the native (diffusers) names.
func hidreamAliases() []Alias { return nil }

func detectHiDream(v View) (bool, string) {
	const key = "caption_projection.0.linear.weight"
	if !v.Has(key) || !v.Has("double_stream_blocks.0.block.adaLN_modulation.1.weight") {
		return false, ""
	}
	return true, fmt.Sprintf("%s; %d double_stream_blocks + %d single_stream_blocks, %d experts; %s; HiDream-I1",
		keyEvidenceB(v, key), v.Count("double_stream_blocks."), v.Count("single_stream_blocks."),
		v.Count("double_stream_blocks.0.block.ff_i.experts."), keyEvidenceB(v, "x_embedder.proj.weight"))
}

func init() {
	Register(&Arch{
		ID:                "hidream",
		Name:              "HiDream-I1",
		Part:              DiT,
		Priority:          42,
		Params:            hidreamParams,
		Aliases:           hidreamAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: CLIPL, Comfy: "clip_l", Kohya: []string{"lora_te1_"}, Diffusers: []string{"text_encoder."}, Model: CLIPLParams, CheckpointPrefix: "text_encoders.clip_l.transformer."},
			{Part: CLIPG, Comfy: "clip_g", Kohya: []string{"lora_te2_"}, Diffusers: []string{"text_encoder_2."}, Model: CLIPGParams, CheckpointPrefix: "text_encoders.clip_g.transformer."},
			{Part: T5, Comfy: "t5xxl", Kohya: []string{"lora_te3_"}, Diffusers: []string{"text_encoder_3."}, Model: T5XXLParams, CheckpointPrefix: "text_encoders.t5xxl.transformer."},
			{Part: LLM, Comfy: "llama", CheckpointPrefix: "text_encoders.llama.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		VAE:             func(s Size) []Param { return VAEParams(s, 16, false) },
		Detect:          detectHiDream,
	})
}
