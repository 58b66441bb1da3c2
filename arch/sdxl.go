package arch

var sdxlUNet = unetConfig{
	modelChannels: 320, inChannels: 4, outChannels: 4,
	channelMult:         []int64{1, 2, 4},
	numResBlocks:        []int{2, 2, 2},
	transformerDepth:    []int{0, 0, 2, 2, 10, 10},
	transformerDepthOut: []int{10, 10, 10, 2, 2, 2, 0, 0, 0},
	middleDepth:         10,
	contextDim:          2048,
	linearProj:          true,
	admIn:               2816,
}

// sdxlSource is where the SDXL widths were checked.
const sdxlSource = "ComfyUI comfy/model_detection.py @006dd0ae (model_channels = input_blocks.0.0 rows, context_dim = attn2.to_k inputs, adm_in_channels = label_emb inputs) and comfy/supported_models.py @005e3702 (SDXL: 320, transformer_depth [0,0,2,2,10,10], context 2048, adm 2816; SDXLRefiner: 384, [0,0,4,4,4,4,0,0], context 1280, adm 2560)"

func init() {
	registerVariants("sdxl", Variant{Name: "SDXL base", Width: 320, Depth: "transformer depth [0,0,2,2,10,10]", Source: sdxlSource,
		Params: func() []Param { return sdxlUNet.size(Full).params(nil) }})
	registerVariants("sdxl-refiner", Variant{Name: "SDXL refiner", Width: 384, Depth: "transformer depth [0,0,4,4,4,4,0,0]", Source: sdxlSource,
		Params: func() []Param { return sdxlRefinerUNet.size(Full).params(nil) }})
	Register(&Arch{
		ID: "sdxl", Name: "Stable Diffusion XL 1.0 (base)", Part: UNet, Priority: 3,
		Params:            func(s Size) []Param { return sdxlUNet.size(s).params(nil) },
		Aliases:           sdxlUNet.aliases,
		DiffusersPrefixes: []string{"unet."},
		Encoders: []Encoder{{
			Part: CLIPL, Comfy: "clip_l", Kohya: []string{"lora_te1_"}, Diffusers: []string{"text_encoder."},
			Model: CLIPLParams, CheckpointPrefix: "conditioner.embedders.0.transformer.",
		}, {
			Part: CLIPG, Comfy: "clip_g", Kohya: []string{"lora_te2_"}, Diffusers: []string{"text_encoder_2."},
			Model: CLIPGParams, CheckpointPrefix: "conditioner.embedders.1.model.", Layout: LayoutOpenCLIP,
		}},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "first_stage_model.",
		VAE:             func(s Size) []Param { return VAEParams(s, 4, true) },
		Detect: func(v View) (bool, string) {
			f, ok := readUNet(v)
			if !ok || f.adm == 0 || !f.linear || f.contextDim*10 != f.modelChannels*64 {
				return false, ""
			}
			variant := "SDXL base"
			switch {
			case v.Has("edm_mean") && v.Has("edm_std"):
				variant = "SDXL (Playground 2.5 EDM)"
			case v.Has("v_pred"):
				variant = "SDXL (v-prediction)"
			}
			return true, "label_emb.0.0.weight in_features " + itoa(f.adm) + " + attn2.to_k in_features " + itoa(f.contextDim) + ": " + variant + inChannelsNote(f.inChannels) + "; " + f.String()
		},
		ModelSpec: "stable-diffusion-xl-v1-base", KohyaVersion: "sdxl_base_v1-0",
	})
}
