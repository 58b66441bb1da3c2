package arch

// Chroma (lodestones): FLUX.1-schnell's 19 double / 38 single blocks
// (hidden 3072) without any per-block modulation, vector_in, time_in or
// guidance_in; all modulation vectors come from distilled_guidance_layer,
// an MLP "approximator" (in 64, hidden 5120, 5 residual layers with RMS
// norms, out 3072). Full describes Chroma (v48/HD, latent space, img_in
// input 64). Chroma Radiance (pixel space) replaces img_in with a 16×16
// patch conv img_in_patch and final_layer with a NeRF head (nerf_*); it is
// detected as chroma but its extra tensors are not in Full (they would add
// ~0.6B parameters a latent Chroma file does not have).

var chromaDims = mmFlux{hidden: 3072, heads: 24, mlp: 12288, inCh: 64, outCh: 64,
	ctx: 4096, nDouble: 19, single: 38}

var chromaTiny = mmFlux{hidden: 32, heads: 2, mlp: 128, inCh: 64, outCh: 64,
	ctx: 16, nDouble: 19, single: 38}

func chromaParams(s Size) []Param {
	d, approx := chromaDims, int64(5120)
	if s == Tiny {
		d, approx = chromaTiny, 64
	}
	h := d.hidden
	var l mmParams
	l.linear("img_in", h, d.inCh, true)
	l.linear("txt_in", h, d.ctx, true)
	// the approximator's input is two 16-dim timestep embeddings (timestep,
	// guidance) plus a 32-dim modulation-index embedding
	l.linear("distilled_guidance_layer.in_proj", approx, 64, true)
	for i := 0; i < 5; i++ {
		p := "distilled_guidance_layer.layers." + mmI(i) + "."
		l.linear(p+"in_layer", approx, approx, true)
		l.linear(p+"out_layer", approx, approx, true)
	}
	for i := 0; i < 5; i++ {
		l.add("distilled_guidance_layer.norms."+mmI(i)+".scale", approx)
	}
	l.linear("distilled_guidance_layer.out_proj", h, approx, true)
	for i := 0; i < d.nDouble; i++ {
		d.doubleBlock(&l, "double_blocks."+mmI(i)+".", false)
	}
	for i := 0; i < d.single; i++ {
		d.singleBlock(&l, "single_blocks."+mmI(i)+".", false)
	}
	l.linear("final_layer.linear", d.outCh, h, true)
	return l.ps
}

// chromaAliases is ComfyUI's Flux map minus the modulation entries whose
// targets Chroma lacks, plus diffusers' ChromaApproximator names
// (layers.N.linear_1/linear_2, a PixArtAlphaTextProjection).
func chromaAliases() []Alias {
	var l mmAliases
	mmFluxAliases(&l, chromaDims.nDouble, chromaDims.single, chromaDims.hidden, false)
	for i := 0; i < 5; i++ {
		p := "distilled_guidance_layer.layers." + mmI(i) + "."
		l.add(p+"linear_1", p+"in_layer")
		l.add(p+"linear_2", p+"out_layer")
	}
	return l.as
}

// chromaDetect follows model_detection.py: the Flux family's qk-norm scale
// plus the approximator's first RMS norm (current or older layout);
// nerf_blocks.0.norm.scale marks Chroma Radiance.
func chromaDetect(v View) (bool, string) {
	const key = "double_blocks.0.img_attn.norm.key_norm.scale"
	if !v.Has(key) {
		return false, ""
	}
	norm, ok := mmHasAny(v, "distilled_guidance_layer.norms.0.scale", "distilled_guidance_layer.0.norms.0.scale")
	if !ok {
		return false, ""
	}
	ev := key + " + " + mmWithShape(v, norm)
	if v.Has("nerf_blocks.0.norm.scale") {
		ev += " + nerf_blocks.0.norm.scale"
		if v.Has("img_in_patch.weight") {
			ev += " + " + mmWithShape(v, "img_in_patch.weight")
		}
		return true, ev + ": Chroma Radiance (pixel space)"
	}
	if v.Has("img_in.weight") {
		ev += " + " + mmWithShape(v, "img_in.weight")
	}
	return true, ev + ": Chroma"
}

func init() {
	Register(&Arch{
		ID:                "chroma",
		Name:              "Chroma",
		Part:              DiT,
		Priority:          11,
		Params:            chromaParams,
		Aliases:           chromaAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			// T5-only model: ComfyUI's lora_teN_ rule gives lora_te1_ (§1.3)
			{Part: T5, Comfy: "t5xxl", Kohya: []string{"lora_te1_"}, Diffusers: []string{"text_encoder."},
				Model: T5XXLParams, CheckpointPrefix: "text_encoders.t5xxl.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		VAE:             func(s Size) []Param { return VAEParams(s, 16, false) },
		Detect:          chromaDetect,
		ModelSpec:       "chroma",
		KohyaVersion:    "chroma",
	})
}
