package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// clipDims are the dimensions of one CLIP text tower.
type clipDims struct {
	layers, width, ff, proj int64
	vocab, ctx              int64
}

func clipParams(d clipDims, withProjection bool) []Param {
	var ps []Param
	add := func(name string, shape ...int64) { ps = append(ps, Param{Name: name, Shape: shape}) }
	add("text_model.embeddings.token_embedding.weight", d.vocab, d.width)
	add("text_model.embeddings.position_embedding.weight", d.ctx, d.width)
	for b := int64(0); b < d.layers; b++ {
		p := "text_model.encoder.layers." + strconv.FormatInt(b, 10) + "."
		for _, m := range []string{"k_proj", "v_proj", "q_proj", "out_proj"} {
			add(p+"self_attn."+m+".weight", d.width, d.width)
			add(p+"self_attn."+m+".bias", d.width)
		}
		add(p+"layer_norm1.weight", d.width)
		add(p+"layer_norm1.bias", d.width)
		add(p+"mlp.fc1.weight", d.ff, d.width)
		add(p+"mlp.fc1.bias", d.ff)
		add(p+"mlp.fc2.weight", d.width, d.ff)
		add(p+"mlp.fc2.bias", d.width)
		add(p+"layer_norm2.weight", d.width)
		add(p+"layer_norm2.bias", d.width)
	}
	add("text_model.final_layer_norm.weight", d.width)
	add("text_model.final_layer_norm.bias", d.width)
	if withProjection {
		add("text_projection.weight", d.proj, d.width)
	}
	return ps
}

func tinyCLIP(d clipDims) clipDims {
	return clipDims{layers: d.layers, width: 16, ff: 32, proj: 16, vocab: 64, ctx: 8}
}

var (
	clipLDims = clipDims{layers: 12, width: 768, ff: 3072, proj: 768, vocab: 49408, ctx: 77}
	clipHDims = clipDims{layers: 24, width: 1024, ff: 4096, proj: 1024, vocab: 49408, ctx: 77}
	clipGDims = clipDims{layers: 32, width: 1280, ff: 5120, proj: 1280, vocab: 49408, ctx: 77}
)

func sized(d clipDims, s Size) clipDims {
	if s == Tiny {
		return tinyCLIP(d)
	}
	return d
}

// CLIPLParams returns the parameters of OpenAI CLIP ViT-L/14's text model in HF
// naming (12 layers, width 768), as SD1.x, SDXL, SD3 and Flux use it.
func CLIPLParams(s Size) []Param { return clipParams(sized(clipLDims, s), false) }

// CLIPHParams returns OpenCLIP ViT-H/14's text model (24 layers, width 1024;
// SD2.x) in HF naming.
func CLIPHParams(s Size) []Param { return clipParams(sized(clipHDims, s), false) }

// CLIPGParams returns OpenCLIP ViT-bigG/14's text model (32 layers, width 1280,
// with text projection; SDXL, SD3) in HF naming.
func CLIPGParams(s Size) []Param { return clipParams(sized(clipGDims, s), true) }

// T5XXLParams returns the encoder of T5 v1.1 XXL (24 blocks, d_model 4096,
// gated FFN 10240) as SD3 and Flux use it, in HF naming.
func T5XXLParams(s Size) []Param {
	layers, d, ff, vocab, heads := int64(24), int64(4096), int64(10240), int64(32128), int64(64)
	if s == Tiny {
		layers, d, ff, vocab, heads = 24, 16, 32, 64, 2
	}
	var ps []Param
	add := func(name string, shape ...int64) { ps = append(ps, Param{Name: name, Shape: shape}) }
	add("shared.weight", vocab, d)
	for b := int64(0); b < layers; b++ {
		p := "encoder.block." + strconv.FormatInt(b, 10) + ".layer."
		for _, m := range []string{"q", "k", "v", "o"} {
			add(p+"0.SelfAttention."+m+".weight", d, d)
		}
		if b == 0 {
			add(p+"0.SelfAttention.relative_attention_bias.weight", 32, heads)
		}
		add(p+"0.layer_norm.weight", d)
		add(p+"1.DenseReluDense.wi_0.weight", ff, d)
		add(p+"1.DenseReluDense.wi_1.weight", ff, d)
		add(p+"1.DenseReluDense.wo.weight", d, ff)
		add(p+"1.layer_norm.weight", d)
	}
	add("encoder.final_layer_norm.weight", d)
	return ps
}

// OpenCLIPName maps an HF-named CLIP parameter (as CLIPG/CLIPH produce)
// onto its open_clip name as SD2.x and SDXL checkpoints store it. q/k/v
// projections land in row thirds of the fused in_proj; width is the
// model width (1280 bigG, 1024 ViT-H). transposed reports a parameter
// stored transposed (text_projection).
func OpenCLIPName(hf string, width int64) (name string, slice *Slice, transposed bool, err error) {
	if hf == "text_projection.weight" {
		return "text_projection", nil, true, nil
	}
	switch hf {
	case "text_model.embeddings.token_embedding.weight":
		return "token_embedding.weight", nil, false, nil
	case "text_model.embeddings.position_embedding.weight":
		return "positional_embedding", nil, false, nil
	case "text_model.final_layer_norm.weight":
		return "ln_final.weight", nil, false, nil
	case "text_model.final_layer_norm.bias":
		return "ln_final.bias", nil, false, nil
	}
	rest, ok := strings.CutPrefix(hf, "text_model.encoder.layers.")
	if !ok {
		return "", nil, false, fmt.Errorf("no open_clip name for %q", hf)
	}
	num, tail, ok := strings.Cut(rest, ".")
	if !ok {
		return "", nil, false, fmt.Errorf("no open_clip name for %q", hf)
	}
	p := "transformer.resblocks." + num + "."
	param := "weight"
	if strings.HasSuffix(tail, ".bias") {
		param = "bias"
	}
	mod := strings.TrimSuffix(strings.TrimSuffix(tail, ".weight"), ".bias")
	switch mod {
	case "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj":
		third := map[string]int64{"self_attn.q_proj": 0, "self_attn.k_proj": 1, "self_attn.v_proj": 2}[mod]
		return p + "attn.in_proj_" + param, &Slice{Offset: third * width, Size: width}, false, nil
	case "self_attn.out_proj":
		return p + "attn.out_proj." + param, nil, false, nil
	case "layer_norm1":
		return p + "ln_1." + param, nil, false, nil
	case "layer_norm2":
		return p + "ln_2." + param, nil, false, nil
	case "mlp.fc1":
		return p + "mlp.c_fc." + param, nil, false, nil
	case "mlp.fc2":
		return p + "mlp.c_proj." + param, nil, false, nil
	}
	return "", nil, false, fmt.Errorf("no open_clip name for %q", hf)
}

// OpenCLIPParams converts an HF-named CLIP parameter list into the
// open_clip layout a checkpoint stores (fused in_proj, transposed
// text_projection), for synthetic checkpoints.
func OpenCLIPParams(hf []Param, width int64) []Param {
	var out []Param
	seen := map[string]bool{}
	for _, p := range hf {
		name, sl, tr, err := OpenCLIPName(p.Name, width)
		if err != nil || seen[name] {
			continue
		}
		seen[name] = true
		shape := append([]int64(nil), p.Shape...)
		if sl != nil {
			shape[0] = 3 * width
		}
		if tr && len(shape) == 2 {
			shape[0], shape[1] = shape[1], shape[0]
		}
		out = append(out, Param{Name: name, Shape: shape})
	}
	return out
}
