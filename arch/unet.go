package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// unetConfig describes an LDM/SGM UNet (SD1.x, SD2.x, SDXL, SDXL refiner)
// the way ComfyUI's detection derives it.
type unetConfig struct {
	modelChannels int64
	inChannels    int64
	outChannels   int64
	channelMult   []int64
	numResBlocks  []int
	// transformerDepth has one entry per input res-block (levels × blocks);
	// transformerDepthOut one per output res-block, in output order.
	transformerDepth    []int
	transformerDepthOut []int
	middleDepth         int
	contextDim          int64
	linearProj          bool  // proj_in/proj_out are Linear (SD2, SDXL) or 1×1 conv (SD1)
	admIn               int64 // label_emb input width (SDXL 2816, refiner 2560), 0 = none
}

// tiny divides every width by 32, keeping names, block structure and the
// ratios detection reads (context width / model width).
func (c unetConfig) tiny() unetConfig {
	t := c
	t.modelChannels = c.modelChannels / 32
	t.contextDim = c.contextDim / 32
	t.admIn = c.admIn / 32
	return t
}

func (c unetConfig) size(s Size) unetConfig {
	if s == Tiny {
		return c.tiny()
	}
	return c
}

func (c unetConfig) resBlock(l *paramList, p string, in, out, emb int64) {
	l.norm(p+".in_layers.0", in)
	l.conv(p+".in_layers.2", out, in, 3)
	l.linear(p+".emb_layers.1", out, emb, true)
	l.norm(p+".out_layers.0", out)
	l.conv(p+".out_layers.3", out, out, 3)
	if in != out {
		l.conv(p+".skip_connection", out, in, 1)
	}
}

func (c unetConfig) spatialTransformer(l *paramList, p string, ch int64, depth int) {
	l.norm(p+".norm", ch)
	proj := func(name string) {
		if c.linearProj {
			l.linear(name, ch, ch, true)
		} else {
			l.conv(name, ch, ch, 1)
		}
	}
	proj(p + ".proj_in")
	for t := 0; t < depth; t++ {
		b := p + ".transformer_blocks." + strconv.Itoa(t)
		l.linear(b+".attn1.to_q", ch, ch, false)
		l.linear(b+".attn1.to_k", ch, ch, false)
		l.linear(b+".attn1.to_v", ch, ch, false)
		l.linear(b+".attn1.to_out.0", ch, ch, true)
		l.linear(b+".ff.net.0.proj", 8*ch, ch, true)
		l.linear(b+".ff.net.2", ch, 4*ch, true)
		l.linear(b+".attn2.to_q", ch, ch, false)
		l.linear(b+".attn2.to_k", ch, c.contextDim, false)
		l.linear(b+".attn2.to_v", ch, c.contextDim, false)
		l.linear(b+".attn2.to_out.0", ch, ch, true)
		l.norm(b+".norm1", ch)
		l.norm(b+".norm2", ch)
		l.norm(b+".norm3", ch)
	}
	proj(p + ".proj_out")
}

// params generates the UNet's parameters in LDM naming, and (through
// alias) the diffusers name of every module it creates.
func (c unetConfig) params(alias func(diffusers, native string)) []Param {
	l := &paramList{}
	mc := c.modelChannels
	emb := 4 * mc
	if alias == nil {
		alias = func(string, string) {}
	}
	resAlias := func(d, n string) {
		for _, s := range [][2]string{{"norm1", "in_layers.0"}, {"conv1", "in_layers.2"}, {"time_emb_proj", "emb_layers.1"}, {"norm2", "out_layers.0"}, {"conv2", "out_layers.3"}, {"conv_shortcut", "skip_connection"}} {
			alias(d+"."+s[0], n+"."+s[1])
		}
	}
	stAlias := func(d, n string, depth int) {
		for _, s := range []string{"norm", "proj_in", "proj_out"} {
			alias(d+"."+s, n+"."+s)
		}
		for t := 0; t < depth; t++ {
			for _, s := range []string{"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "norm1", "norm2", "norm3"} {
				ts := ".transformer_blocks." + strconv.Itoa(t) + "." + s
				alias(d+ts, n+ts)
			}
		}
	}
	l.linear("time_embed.0", emb, mc, true)
	l.linear("time_embed.2", emb, emb, true)
	alias("time_embedding.linear_1", "time_embed.0")
	alias("time_embedding.linear_2", "time_embed.2")
	if c.admIn > 0 {
		l.linear("label_emb.0.0", emb, c.admIn, true)
		l.linear("label_emb.0.2", emb, emb, true)
		alias("add_embedding.linear_1", "label_emb.0.0")
		alias("add_embedding.linear_2", "label_emb.0.2")
	}
	l.conv("input_blocks.0.0", mc, c.inChannels, 3)
	alias("conv_in", "input_blocks.0.0")
	ch := mc
	chans := []int64{mc}
	n, td := 1, 0
	for level, mult := range c.channelMult {
		for i := 0; i < c.numResBlocks[level]; i++ {
			out := mult * mc
			native := "input_blocks." + strconv.Itoa(n)
			d := fmt.Sprintf("down_blocks.%d", level)
			c.resBlock(l, native+".0", ch, out, emb)
			resAlias(fmt.Sprintf("%s.resnets.%d", d, i), native+".0")
			ch = out
			if depth := c.transformerDepth[td]; depth > 0 {
				c.spatialTransformer(l, native+".1", ch, depth)
				stAlias(fmt.Sprintf("%s.attentions.%d", d, i), native+".1", depth)
			}
			td++
			chans = append(chans, ch)
			n++
		}
		if level != len(c.channelMult)-1 {
			native := "input_blocks." + strconv.Itoa(n) + ".0.op"
			l.conv(native, ch, ch, 3)
			alias(fmt.Sprintf("down_blocks.%d.downsamplers.0.conv", level), native)
			chans = append(chans, ch)
			n++
		}
	}
	c.resBlock(l, "middle_block.0", ch, ch, emb)
	resAlias("mid_block.resnets.0", "middle_block.0")
	c.spatialTransformer(l, "middle_block.1", ch, c.middleDepth)
	stAlias("mid_block.attentions.0", "middle_block.1", c.middleDepth)
	c.resBlock(l, "middle_block.2", ch, ch, emb)
	resAlias("mid_block.resnets.1", "middle_block.2")
	n, td = 0, 0
	for up := 0; up < len(c.channelMult); up++ {
		level := len(c.channelMult) - 1 - up
		mult := c.channelMult[level]
		for i := 0; i <= c.numResBlocks[level]; i++ {
			skip := chans[len(chans)-1]
			chans = chans[:len(chans)-1]
			out := mc * mult
			native := "output_blocks." + strconv.Itoa(n)
			d := fmt.Sprintf("up_blocks.%d", up)
			c.resBlock(l, native+".0", ch+skip, out, emb)
			resAlias(fmt.Sprintf("%s.resnets.%d", d, i), native+".0")
			ch = out
			sub := 1
			if depth := c.transformerDepthOut[td]; depth > 0 {
				c.spatialTransformer(l, native+".1", ch, depth)
				stAlias(fmt.Sprintf("%s.attentions.%d", d, i), native+".1", depth)
				sub = 2
			}
			td++
			if level > 0 && i == c.numResBlocks[level] {
				nm := native + "." + strconv.Itoa(sub) + ".conv"
				l.conv(nm, ch, ch, 3)
				alias(d+".upsamplers.0.conv", nm)
			}
			n++
		}
	}
	l.norm("out.0", ch)
	l.conv("out.2", c.outChannels, ch, 3)
	alias("conv_norm_out", "out.0")
	alias("conv_out", "out.2")
	return l.ps
}

func (c unetConfig) aliases() []Alias {
	var as []Alias
	c.params(func(d, n string) { as = append(as, Alias{Name: d, Target: n}) })
	return as
}

// scheduleBuffers are the DDPM noise-schedule tensors SD1.x/SD2.x
// single-file checkpoints carry at the top level.
func scheduleBuffers(s Size) []Param {
	n := int64(1000)
	if s == Tiny {
		n = 10
	}
	var ps []Param
	for _, name := range []string{"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"} {
		ps = append(ps, Param{Name: name, Shape: []int64{n}})
	}
	return ps
}

// unetView reads the UNet config ComfyUI's detect_unet_config derives.
type unetFacts struct {
	modelChannels, inChannels, contextDim, adm int64
	linear                                     bool
	depth                                      []int // transformer depth per input block 1..
}

func readUNet(v View) (unetFacts, bool) {
	var f unetFacts
	conv := v.Shape("input_blocks.0.0.weight")
	if len(conv) != 4 {
		return f, false
	}
	f.modelChannels, f.inChannels = conv[0], conv[1]
	for n := 1; n < 16; n++ {
		p := "input_blocks." + strconv.Itoa(n) + ".1."
		if k := v.Shape(p + "transformer_blocks.0.attn2.to_k.weight"); len(k) == 2 && f.contextDim == 0 {
			f.contextDim = k[1]
			f.linear = len(v.Shape(p+"proj_in.weight")) == 2
		}
		f.depth = append(f.depth, v.Count(p+"transformer_blocks."))
	}
	if l := v.Shape("label_emb.0.0.weight"); len(l) == 2 {
		f.adm = l[1]
	}
	return f, true
}

func (f unetFacts) String() string {
	var d []string
	for _, x := range f.depth {
		d = append(d, strconv.Itoa(x))
	}
	return fmt.Sprintf("model_channels %d, in_channels %d, context_dim %d, adm_in %d, linear proj %v, transformer depth [%s]",
		f.modelChannels, f.inChannels, f.contextDim, f.adm, f.linear, strings.TrimRight(strings.Join(d, ","), ",0"))
}

// inChannelsNote names the UNet variant its input channels imply.
func inChannelsNote(in int64) string {
	switch in {
	case 9:
		return " (inpainting)"
	case 8:
		return " (instruct-pix2pix)"
	}
	return ""
}

// indexed lists the modules cloneofsimo's LoRA format numbers, in its
// order: it walks the diffusers UNet's modules (down blocks, up blocks,
// then the mid block, as diffusers registers them) and takes every Linear
// inside attention and GEGLU modules; for the text encoder the CLIP
// attention projections (k, v, q, out, as HF registers them) per layer.
func (c unetConfig) indexed(textLayers int) func(kind string) []string {
	return func(kind string) []string {
		var out []string
		switch kind {
		case "unet":
			block := func(d string, depth int) {
				for t := 0; t < depth; t++ {
					b := "unet." + d + ".transformer_blocks." + strconv.Itoa(t) + "."
					for _, s := range []string{"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"} {
						out = append(out, b+s)
					}
				}
			}
			td := 0
			for level := range c.channelMult {
				for i := 0; i < c.numResBlocks[level]; i++ {
					if depth := c.transformerDepth[td]; depth > 0 {
						block(fmt.Sprintf("down_blocks.%d.attentions.%d", level, i), depth)
					}
					td++
				}
			}
			td = 0
			for up := range c.channelMult {
				level := len(c.channelMult) - 1 - up
				for i := 0; i <= c.numResBlocks[level]; i++ {
					if depth := c.transformerDepthOut[td]; depth > 0 {
						block(fmt.Sprintf("up_blocks.%d.attentions.%d", up, i), depth)
					}
					td++
				}
			}
			block("mid_block.attentions.0", c.middleDepth)
		case "text_encoder":
			for l := 0; l < textLayers; l++ {
				for _, s := range []string{"k_proj", "v_proj", "q_proj", "out_proj"} {
					out = append(out, "text_encoder.text_model.encoder.layers."+strconv.Itoa(l)+".self_attn."+s)
				}
			}
		}
		return out
	}
}
