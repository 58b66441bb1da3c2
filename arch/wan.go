package arch

import (
	"fmt"
	"strings"
)

// Wan 2.x (Alibaba), in the original Wan naming ComfyUI keeps
// (comfy/ldm/wan/model.py): blocks.N.{self_attn,cross_attn}.{q,k,v,o},
// norm_q/norm_k, norm3 (affine cross-attention norm), ffn.0/ffn.2 and the
// raw per-block parameter blocks.N.modulation [1,6,dim]; head.head,
// head.modulation, patch_embedding (Conv3d), text_embedding.0/2,
// time_embedding.0/2, time_projection.1.
//
// Full is Wan 2.1 I2V 14B (≈16.4B parameters): dim 5120, 40 heads,
// ffn 13824, 40 blocks, in_dim 36, out_dim 16, text_dim 4096, and the
// image-conditioning extras cross_attn.k_img/v_img/norm_k_img and
// img_emb.proj.* (CLIP-H 1280 → dim). Those extras are included so that
// I2V LoRAs resolve; without them it is Wan 2.1 T2V 14B / Wan 2.2 A14B
// (≈14.3B, in_dim 16). Wan 2.1 1.3B (dim 1536, 30 blocks) and Wan 2.2
// TI2V-5B (dim 3072, 30 blocks, out_dim 48) use the same names. Not in
// Full: FLF2V's img_emb.emb_pos, VACE's vace_blocks.*/vace_patch_embedding,
// camera/S2V/HuMo/Animate adapters.

type wanDimsB struct {
	dim, ffn, text, freq, in, out, img int64
	layers                             int
}

func wanDims(s Size) wanDimsB {
	if s == Tiny {
		return wanDimsB{dim: 32, ffn: 64, text: 32, freq: 16, in: 36, out: 16, img: 32, layers: 40}
	}
	return wanDimsB{dim: 5120, ffn: 13824, text: 4096, freq: 256, in: 36, out: 16, img: 1280, layers: 40}
}

func wanParams(s Size) []Param { return wanTable(wanDims(s), true) }

// wanTable is one Wan model's table; clip adds the CLIP-image extras of
// the Wan 2.1 I2V/FLF2V models (cross_attn.k_img/v_img/norm_k_img,
// img_emb.proj.*).
func wanTable(d wanDimsB, clip bool) []Param {
	c := d.dim
	var t tableB
	t.add("patch_embedding.weight", c, d.in, 1, 2, 2)
	t.add("patch_embedding.bias", c)
	t.linear("text_embedding.0", c, d.text, true)
	t.linear("text_embedding.2", c, c, true)
	t.linear("time_embedding.0", c, d.freq, true)
	t.linear("time_embedding.2", c, c, true)
	t.linear("time_projection.1", 6*c, c, true)
	for i := 0; i < d.layers; i++ {
		p := "blocks." + itoaB(i) + "."
		t.add(p+"modulation", 1, 6, c)
		for _, at := range []string{"self_attn", "cross_attn"} {
			for _, m := range []string{"q", "k", "v", "o"} {
				t.linear(p+at+"."+m, c, c, true)
			}
			t.weight(p+at+".norm_q", c)
			t.weight(p+at+".norm_k", c)
		}
		if clip {
			t.linear(p+"cross_attn.k_img", c, c, true)
			t.linear(p+"cross_attn.v_img", c, c, true)
			t.weight(p+"cross_attn.norm_k_img", c)
		}
		t.norm(p+"norm3", c)
		t.linear(p+"ffn.0", d.ffn, c, true)
		t.linear(p+"ffn.2", c, d.ffn, true)
	}
	t.linear("head.head", 4*d.out, c, true)
	t.add("head.modulation", 1, 2, c)
	if clip {
		t.norm("img_emb.proj.0", d.img)
		t.linear("img_emb.proj.1", d.img, d.img, true)
		t.linear("img_emb.proj.3", c, d.img, true)
		t.norm("img_emb.proj.4", c)
	}
	return t.ps
}

// wanAliases are diffusers WanTransformer3DModel names (diffusers'
// convert_wan_to_diffusers and lora_conversion_utils).
func wanAliases() []Alias {
	d := wanDims(Full)
	var a aliasesB
	for i := 0; i < d.layers; i++ {
		p := "blocks." + itoaB(i) + "."
		for _, at := range [][2]string{{"attn1", "self_attn"}, {"attn2", "cross_attn"}} {
			for _, m := range [][2]string{{"to_q", "q"}, {"to_k", "k"}, {"to_v", "v"}, {"to_out.0", "o"}, {"norm_q", "norm_q"}, {"norm_k", "norm_k"}} {
				a.to(p+at[0]+"."+m[0], p+at[1]+"."+m[1])
			}
		}
		a.to(p+"attn2.add_k_proj", p+"cross_attn.k_img")
		a.to(p+"attn2.add_v_proj", p+"cross_attn.v_img")
		a.to(p+"attn2.norm_added_k", p+"cross_attn.norm_k_img")
		a.to(p+"norm2", p+"norm3") // diffusers swaps the names of norm2/norm3
		a.to(p+"ffn.net.0.proj", p+"ffn.0")
		a.to(p+"ffn.net.2", p+"ffn.2")
		a.to(p+"scale_shift_table", p+"modulation")
	}
	a.to("condition_embedder.time_embedder.linear_1", "time_embedding.0")
	a.to("condition_embedder.time_embedder.linear_2", "time_embedding.2")
	a.to("condition_embedder.text_embedder.linear_1", "text_embedding.0")
	a.to("condition_embedder.text_embedder.linear_2", "text_embedding.2")
	a.to("condition_embedder.time_proj", "time_projection.1")
	a.to("condition_embedder.image_embedder.norm1", "img_emb.proj.0")
	a.to("condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1")
	a.to("condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3")
	a.to("condition_embedder.image_embedder.norm2", "img_emb.proj.4")
	a.to("proj_out", "head.head")
	a.to("scale_shift_table", "head.modulation")
	return a.as
}

func detectWan(v View) (bool, string) {
	const key = "head.modulation"
	if !v.Has(key) || !v.Has("patch_embedding.weight") {
		return false, ""
	}
	dim := dimB(v, key, -1)
	layers := v.Count("blocks.")
	inDim := dimB(v, "patch_embedding.weight", 1)
	outDim := dimB(v, "head.head.weight", 0) / 4
	ffn := dimB(v, "blocks.0.ffn.0.weight", 0)
	var size string
	switch {
	case dim == 5120:
		size = "14B"
	case dim == 1536:
		size = "1.3B"
	case dim == 3072 && outDim == 48:
		size = "2.2 TI2V-5B"
	case dim == 3072:
		size = "5B"
	default:
		size = fmt.Sprintf("dim %d", dim)
	}
	var kind []string
	switch {
	case v.Has("vace_patch_embedding.weight"):
		kind = append(kind, "VACE")
	case v.Has("control_adapter.conv.weight"):
		kind = append(kind, "camera control")
	case v.Has("casual_audio_encoder.encoder.final_linear.weight"):
		kind = append(kind, "S2V")
	case v.Has("audio_proj.audio_proj_glob_1.layer.bias"):
		kind = append(kind, "HuMo")
	case v.Has("face_adapter.fuser_blocks.0.k_norm.weight"):
		kind = append(kind, "Animate")
	case v.Has("img_emb.emb_pos"):
		kind = append(kind, "FLF2V")
	case v.Has("img_emb.proj.0.bias"):
		kind = append(kind, "i2v")
	case outDim == 48:
		kind = append(kind, "ti2v")
	default:
		kind = append(kind, "t2v")
	}
	switch inDim {
	case 48:
		if outDim != 48 {
			kind = append(kind, "Fun-Control input")
		}
	case 32:
		kind = append(kind, "camera input")
	}
	return true, fmt.Sprintf("%s (dim %d); patch_embedding.weight %s (in_dim %d); head.head out_dim %d; %d blocks, ffn %d; Wan %s %s",
		keyEvidenceB(v, key), dim, shapeB(v.Shape("patch_embedding.weight")), inDim, outDim, layers, ffn, size, strings.Join(kind, ", "))
}

// wanSource is where the Wan widths were checked.
const wanSource = "Alibaba's Wan configs as copied in ml-explore/mlx-examples video/Wan2.1/wan/configs/wan_{t2v_1_3B,t2v_14B,i2v_14B}.py and " +
	"video/Wan2.2/wan/configs/wan_{t2v_A14B,i2v_A14B}.py @5dae592b, wan_ti2v_5B.py @3b25af07 (dim, ffn_dim, num_heads, num_layers; " +
	"only Wan 2.1 I2V loads a CLIP image encoder, hence k_img/v_img and img_emb)"

func init() {
	w := func(dim, ffn int64, layers int, in, out int64) wanDimsB {
		return wanDimsB{dim: dim, ffn: ffn, text: 4096, freq: 256, in: in, out: out, img: 1280, layers: layers}
	}
	tab := func(d wanDimsB, clip bool) func() []Param { return func() []Param { return wanTable(d, clip) } }
	registerVariants("wan",
		Variant{Name: "Wan 2.1 T2V 14B", Width: 5120, Depth: "40 blocks", Source: wanSource, Params: tab(w(5120, 13824, 40, 16, 16), false)},
		Variant{Name: "Wan 2.1 I2V 14B", Width: 5120, Depth: "40 blocks", Only: "cross_attn.k_img/v_img/norm_k_img, img_emb.proj.* (CLIP-H image features); patch_embedding input 36",
			Source: wanSource, Params: tab(w(5120, 13824, 40, 36, 16), true)},
		Variant{Name: "Wan 2.1 T2V 1.3B", Width: 1536, Depth: "30 blocks", Source: wanSource, Params: tab(w(1536, 8960, 30, 16, 16), false)},
		Variant{Name: "Wan 2.2 T2V A14B (high/low noise)", Width: 5120, Depth: "40 blocks", Only: "same tensors as Wan 2.1 T2V 14B; the high- and low-noise experts have identical shapes",
			Source: wanSource, Params: tab(w(5120, 13824, 40, 16, 16), false)},
		Variant{Name: "Wan 2.2 I2V A14B (high/low noise)", Width: 5120, Depth: "40 blocks", Only: "patch_embedding input 36, no CLIP-image extras",
			Source: wanSource, Params: tab(w(5120, 13824, 40, 36, 16), false)},
		Variant{Name: "Wan 2.2 TI2V 5B", Width: 3072, Depth: "30 blocks", Only: "48-channel latents (patch_embedding input 48, head 4 × 48)",
			Source: wanSource, Params: tab(w(3072, 14336, 30, 48, 48), false)},
	)
	Register(&Arch{
		ID:                "wan",
		Name:              "Wan 2.x",
		Part:              DiT,
		Priority:          40,
		Params:            wanParams,
		Aliases:           wanAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: T5, Comfy: "umt5xxl", CheckpointPrefix: "text_encoders.umt5xxl.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		Detect:          detectWan,
		ModelSpec:       "wan2.1",
	})
}
