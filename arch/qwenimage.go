package arch

import "fmt"

// Qwen-Image (Alibaba), whose native names are the diffusers names
// (comfy/ldm/qwen_image/model.py mirrors QwenImageTransformer2DModel):
// transformer_blocks.N.attn.{to_q,to_k,to_v,add_q_proj,add_k_proj,
// add_v_proj,to_out.0,to_add_out,norm_q,norm_k,norm_added_q,norm_added_k},
// img_mod.1/txt_mod.1, img_mlp/txt_mlp.net.0.proj and net.2.
//
// Full is Qwen-Image (≈20.4B parameters): 60 blocks, 24 heads of 128
// (dim 3072), MLP 12288, in_channels 64 (16 latent channels × 2×2 patch),
// Qwen2.5-VL-7B text features (3584). Qwen-Image-Edit, -Edit-2509/2511 and
// -2512 share the names; -Edit-2511 adds the marker __index_timestep_zero__
// and -Layered adds time_text_embed.addition_t_embedding (not in Full).

type qwenDimsB struct {
	dim, headDim, mlp, joint, in, out, freq int64
	layers                                  int
}

func qwenImageDims(s Size) qwenDimsB {
	if s == Tiny {
		return qwenDimsB{dim: 32, headDim: 16, mlp: 128, joint: 32, in: 64, out: 16, freq: 16, layers: 60}
	}
	return qwenDimsB{dim: 3072, headDim: 128, mlp: 12288, joint: 3584, in: 64, out: 16, freq: 256, layers: 60}
}

func qwenImageParams(s Size) []Param { return qwenImageTable(qwenImageDims(s)) }

// qwenImageTable is one Qwen-Image model's table.
func qwenImageTable(d qwenDimsB) []Param {
	c := d.dim
	var t tableB
	t.linear("time_text_embed.timestep_embedder.linear_1", c, d.freq, true)
	t.linear("time_text_embed.timestep_embedder.linear_2", c, c, true)
	t.weight("txt_norm", d.joint)
	t.linear("img_in", c, d.in, true)
	t.linear("txt_in", c, d.joint, true)
	for i := 0; i < d.layers; i++ {
		p := "transformer_blocks." + itoaB(i) + "."
		t.linear(p+"img_mod.1", 6*c, c, true)
		t.linear(p+"txt_mod.1", 6*c, c, true)
		for _, m := range []string{"to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"} {
			t.linear(p+"attn."+m, c, c, true)
		}
		t.linear(p+"attn.to_out.0", c, c, true)
		t.linear(p+"attn.to_add_out", c, c, true)
		for _, n := range []string{"norm_q", "norm_k", "norm_added_q", "norm_added_k"} {
			t.weight(p+"attn."+n, d.headDim)
		}
		for _, m := range []string{"img_mlp", "txt_mlp"} {
			t.linear(p+m+".net.0.proj", d.mlp, c, true)
			t.linear(p+m+".net.2", c, d.mlp, true)
		}
	}
	t.linear("norm_out.linear", 2*c, c, true)
	t.linear("proj_out", 4*d.out, c, true)
	return t.ps
}

// qwenImageAliases is empty: diffusers, DiffSynth, musubi-tuner, ai-toolkit
// and kohya-style Qwen-Image LoRAs all use the native (diffusers) names.
func qwenImageAliases() []Alias { return nil }

func detectQwenImage(v View) (bool, string) {
	const key = "txt_norm.weight"
	if !v.Has(key) || !v.Has("transformer_blocks.0.img_mod.1.weight") {
		return false, ""
	}
	variant := "Qwen-Image"
	switch {
	case v.Has("__index_timestep_zero__"):
		variant = "Qwen-Image-Edit-2511"
	case v.Has("time_text_embed.addition_t_embedding.weight"):
		variant = "Qwen-Image-Layered"
	}
	return true, fmt.Sprintf("%s (text dim %d); %s; %d transformer_blocks; %s",
		keyEvidenceB(v, key), dimB(v, key, 0), keyEvidenceB(v, "img_in.weight"),
		v.Count("transformer_blocks."), variant)
}

// qwenSource is where the Qwen-Image widths were checked.
const qwenSource = "diffusers src/diffusers/models/transformers/transformer_qwenimage.py @0052f58c (QwenImageTransformer2DModel: 60 layers, 24 heads × 128, joint_attention_dim 3584, in_channels 64, out_channels 16)"

func init() {
	full := func() []Param { return qwenImageTable(qwenImageDims(Full)) }
	registerVariants("qwen-image",
		Variant{Name: "Qwen-Image", Width: 3072, Depth: "60 blocks", Source: qwenSource, Params: full},
		Variant{Name: "Qwen-Image-Edit", Width: 3072, Depth: "60 blocks", Only: "none: the same tensors as Qwen-Image (Edit-2511 adds the marker __index_timestep_zero__)",
			Source: qwenSource, Params: full},
	)
	Register(&Arch{
		ID:                "qwen-image",
		Name:              "Qwen-Image",
		Part:              DiT,
		Priority:          41,
		Params:            qwenImageParams,
		Aliases:           qwenImageAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: LLM, Comfy: "qwen25_7b", CheckpointPrefix: "text_encoders.qwen25_7b.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		Detect:          detectQwenImage,
		ModelSpec:       "Qwen-Image",
	})
}
