package arch

var sdxlRefinerUNet = unetConfig{
	modelChannels: 384, inChannels: 4, outChannels: 4,
	channelMult:         []int64{1, 2, 4, 4},
	numResBlocks:        []int{2, 2, 2, 2},
	transformerDepth:    []int{0, 0, 4, 4, 4, 4, 0, 0},
	transformerDepthOut: []int{0, 0, 0, 4, 4, 4, 4, 4, 4, 0, 0, 0},
	middleDepth:         4,
	contextDim:          1280,
	linearProj:          true,
	admIn:               2560,
}

func init() {
	Register(&Arch{
		ID: "sdxl-refiner", Name: "Stable Diffusion XL 1.0 refiner", Part: UNet, Priority: 4,
		Params:            func(s Size) []Param { return sdxlRefinerUNet.size(s).params(nil) },
		Aliases:           sdxlRefinerUNet.aliases,
		DiffusersPrefixes: []string{"unet."},
		Encoders: []Encoder{{
			Part: CLIPG, Comfy: "clip_g", Kohya: []string{"lora_te_"}, Diffusers: []string{"text_encoder.", "text_encoder_2."},
			Model: CLIPGParams, CheckpointPrefix: "conditioner.embedders.0.model.", Layout: LayoutOpenCLIP,
		}},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "first_stage_model.",
		VAE:             func(s Size) []Param { return VAEParams(s, 4, true) },
		Detect: func(v View) (bool, string) {
			f, ok := readUNet(v)
			if !ok || f.adm == 0 || !f.linear || f.contextDim*384 != f.modelChannels*1280 {
				return false, ""
			}
			return true, "label_emb.0.0.weight in_features " + itoa(f.adm) + " + model_channels " + itoa(f.modelChannels) + " + attn2.to_k in_features " + itoa(f.contextDim) + ": SDXL refiner; " + f.String()
		},
		ModelSpec: "stable-diffusion-xl-v1-refiner",
	})
}
