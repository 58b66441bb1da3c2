package arch

import "strconv"

// VAEParams returns the parameters of the LDM autoencoder (KL-f8) in the
// naming single-file checkpoints use under "first_stage_model." or "vae.":
// channel multipliers [1,2,4,4] of 128, two res-blocks per level, a
// mid-block with attention. latent is the latent channel count (4 for
// SD1.x/SD2.x/SDXL, 16 for SD3 and Flux). quantConv is false for VAEs
// without quant_conv/post_quant_conv (SD3, Flux).
func VAEParams(s Size, latent int64, quantConv bool) []Param {
	base := int64(128)
	if s == Tiny {
		base = 8
	}
	mult := []int64{1, 2, 4, 4}
	var ps []Param
	add := func(name string, shape ...int64) { ps = append(ps, Param{Name: name, Shape: shape}) }
	conv := func(name string, out, in, k int64) {
		add(name+".weight", out, in, k, k)
		add(name+".bias", out)
	}
	norm := func(name string, c int64) {
		add(name+".weight", c)
		add(name+".bias", c)
	}
	resnet := func(p string, in, out int64) {
		norm(p+".norm1", in)
		conv(p+".conv1", out, in, 3)
		norm(p+".norm2", out)
		conv(p+".conv2", out, out, 3)
		if in != out {
			conv(p+".nin_shortcut", out, in, 1)
		}
	}
	mid := func(p string, c int64) {
		norm(p+".attn_1.norm", c)
		for _, m := range []string{"q", "k", "v", "proj_out"} {
			conv(p+".attn_1."+m, c, c, 1)
		}
		resnet(p+".block_1", c, c)
		resnet(p+".block_2", c, c)
	}
	top := base * mult[len(mult)-1]
	// encoder
	conv("encoder.conv_in", base, 3, 3)
	in := base
	for i, m := range mult {
		out := base * m
		for j := 0; j < 2; j++ {
			resnet("encoder.down."+strconv.Itoa(i)+".block."+strconv.Itoa(j), in, out)
			in = out
		}
		if i != len(mult)-1 {
			conv("encoder.down."+strconv.Itoa(i)+".downsample.conv", out, out, 3)
		}
	}
	mid("encoder.mid", top)
	norm("encoder.norm_out", top)
	conv("encoder.conv_out", 2*latent, top, 3)
	// decoder
	conv("decoder.conv_in", top, latent, 3)
	mid("decoder.mid", top)
	in = top
	for i := len(mult) - 1; i >= 0; i-- {
		out := base * mult[i]
		for j := 0; j < 3; j++ {
			resnet("decoder.up."+strconv.Itoa(i)+".block."+strconv.Itoa(j), in, out)
			in = out
		}
		if i != 0 {
			conv("decoder.up."+strconv.Itoa(i)+".upsample.conv", out, out, 3)
		}
	}
	norm("decoder.norm_out", base)
	conv("decoder.conv_out", 3, base, 3)
	if quantConv {
		conv("quant_conv", 2*latent, 2*latent, 1)
		conv("post_quant_conv", latent, latent, 1)
	}
	return ps
}
