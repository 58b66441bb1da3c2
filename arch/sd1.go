package arch

var sd1UNet = unetConfig{
	modelChannels: 320, inChannels: 4, outChannels: 4,
	channelMult:         []int64{1, 2, 4, 4},
	numResBlocks:        []int{2, 2, 2, 2},
	transformerDepth:    []int{1, 1, 1, 1, 1, 1, 0, 0},
	transformerDepthOut: []int{0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	middleDepth:         1,
	contextDim:          768,
}

func init() {
	Register(&Arch{
		ID: "sd1", Name: "Stable Diffusion 1.x", Part: UNet, Priority: 1,
		Params:            func(s Size) []Param { return sd1UNet.size(s).params(nil) },
		Aliases:           sd1UNet.aliases,
		DiffusersPrefixes: []string{"unet."},
		KohyaDiffusers:    true,
		Indexed:           sd1UNet.indexed(12),
		Encoders: []Encoder{{
			Part: CLIPL, Comfy: "clip_l", Kohya: []string{"lora_te_"}, Diffusers: []string{"text_encoder."},
			Model: CLIPLParams, CheckpointPrefix: "cond_stage_model.transformer.",
		}},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "first_stage_model.",
		VAE:             func(s Size) []Param { return VAEParams(s, 4, true) },
		Extras: func(s Size) []Param {
			n := int64(77)
			if s == Tiny {
				n = 8
			}
			return append(scheduleBuffers(s), Param{Name: "cond_stage_model.transformer.text_model.embeddings.position_ids", Shape: []int64{1, n}, DType: "I64"})
		},
		Detect: func(v View) (bool, string) {
			f, ok := readUNet(v)
			if !ok || f.adm != 0 || f.linear || f.contextDim*10 != f.modelChannels*24 {
				return false, ""
			}
			return true, "input_blocks.0.0.weight + attn2.to_k in_features " + itoa(f.contextDim) + " (CLIP-L context), conv proj_in: SD1.x UNet" + inChannelsNote(f.inChannels) + "; " + f.String()
		},
		ModelSpec: "stable-diffusion-v1", KohyaVersion: "sd_v1",
	})
}
