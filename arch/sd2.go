package arch

var sd2UNet = func() unetConfig {
	c := sd1UNet
	c.contextDim = 1024
	c.linearProj = true
	return c
}()

func init() {
	Register(&Arch{
		ID: "sd2", Name: "Stable Diffusion 2.x", Part: UNet, Priority: 2,
		Params:            func(s Size) []Param { return sd2UNet.size(s).params(nil) },
		Aliases:           sd2UNet.aliases,
		DiffusersPrefixes: []string{"unet."},
		KohyaDiffusers:    true,
		Indexed:           sd2UNet.indexed(24),
		Encoders: []Encoder{{
			Part: CLIPH, Comfy: "clip_h", Kohya: []string{"lora_te_", "lora_te1_"}, Diffusers: []string{"text_encoder."},
			Model: CLIPHParams, CheckpointPrefix: "cond_stage_model.model.", Layout: LayoutOpenCLIP,
		}},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "first_stage_model.",
		VAE:             func(s Size) []Param { return VAEParams(s, 4, true) },
		Extras:          scheduleBuffers,
		Detect: func(v View) (bool, string) {
			f, ok := readUNet(v)
			if !ok || !f.linear || f.contextDim*10 != f.modelChannels*32 {
				return false, ""
			}
			note := ""
			if f.adm != 0 {
				note = " (unCLIP)"
			}
			return true, "input_blocks.0.0.weight + attn2.to_k in_features " + itoa(f.contextDim) + " (OpenCLIP-H context), linear proj_in: SD2.x UNet" + note + inChannelsNote(f.inChannels) + "; " + f.String()
		},
		ModelSpec: "stable-diffusion-v2-512", KohyaVersion: "sd_v2",
	})
}
