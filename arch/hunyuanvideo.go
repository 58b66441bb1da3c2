package arch

import (
	"fmt"
	"strings"
)

// HunyuanVideo (Tencent), in ComfyUI's internal naming
// (comfy/ldm/hunyuan_video/model.py, built from the Flux blocks):
// double_blocks.N.{img,txt}_{mod.lin,attn.qkv,attn.norm,attn.proj,mlp.0,mlp.2},
// single_blocks.N.{linear1,linear2,norm,modulation.lin}, the text token
// refiner txt_in.* and a Conv3d patch embedding img_in.proj.
//
// Full is HunyuanVideo T2V 720p (≈12.8B parameters): hidden 3072 (24 heads
// of 128), MLP ratio 4, 20 double + 40 single blocks, 2 refiner blocks,
// in/out channels 16, patch [1,2,2], qkv bias, guidance embedding,
// Llama (4096) text features and a CLIP-L (768) pooled vector. The I2V
// (in 33) and SkyReels (in 32) checkpoints have the same names and
// differ only in img_in.proj's input channels.

type hunyuanDimsB struct {
	hidden, headDim, mlp, ctx, vec, in, out, freq int64
	double, single, refiner                       int
	v15                                           bool // HunyuanVideo 1.5: patch 1, no vector_in/guidance_in, cond_type_embedding
}

func hunyuanDims(s Size) hunyuanDimsB {
	if s == Tiny {
		return hunyuanDimsB{hidden: 32, headDim: 16, mlp: 128, ctx: 32, vec: 16, in: 16, out: 16, freq: 16, double: 20, single: 40, refiner: 2}
	}
	return hunyuanDimsB{hidden: 3072, headDim: 128, mlp: 12288, ctx: 4096, vec: 768, in: 16, out: 16, freq: 256, double: 20, single: 40, refiner: 2}
}

func hunyuanVideoParams(s Size) []Param { return hunyuanTable(hunyuanDims(s)) }

// hunyuanTable is one HunyuanVideo model's table.
func hunyuanTable(d hunyuanDimsB) []Param {
	h := d.hidden
	var t tableB
	patch := []int64{1, 2, 2}
	if d.v15 {
		patch = []int64{1, 1, 1}
	}
	t.add("img_in.proj.weight", h, d.in, patch[0], patch[1], patch[2])
	t.add("img_in.proj.bias", h)
	mlpEmbed := func(p string, in int64) {
		t.linear(p+".in_layer", h, in, true)
		t.linear(p+".out_layer", h, h, true)
	}
	mlpEmbed("time_in", d.freq)
	if d.v15 {
		t.add("cond_type_embedding.weight", 3, h)
	} else {
		mlpEmbed("vector_in", d.vec)
		mlpEmbed("guidance_in", d.freq)
	}
	t.linear("txt_in.input_embedder", h, d.ctx, true)
	mlpEmbed("txt_in.t_embedder", d.freq)
	mlpEmbed("txt_in.c_embedder", d.ctx)
	for i := 0; i < d.refiner; i++ {
		p := "txt_in.individual_token_refiner.blocks." + itoaB(i) + "."
		t.norm(p+"norm1", h)
		t.linear(p+"self_attn.qkv", 3*h, h, true)
		t.linear(p+"self_attn.proj", h, h, true)
		t.norm(p+"norm2", h)
		t.linear(p+"mlp.0", d.mlp, h, true)
		t.linear(p+"mlp.2", h, d.mlp, true)
		t.linear(p+"adaLN_modulation.1", 2*h, h, true)
	}
	for i := 0; i < d.double; i++ {
		p := "double_blocks." + itoaB(i) + "."
		for _, s := range []string{"img", "txt"} {
			t.linear(p+s+"_mod.lin", 6*h, h, true)
			t.linear(p+s+"_attn.qkv", 3*h, h, true)
			t.scale(p+s+"_attn.norm.query_norm", d.headDim)
			t.scale(p+s+"_attn.norm.key_norm", d.headDim)
			t.linear(p+s+"_attn.proj", h, h, true)
			t.linear(p+s+"_mlp.0", d.mlp, h, true)
			t.linear(p+s+"_mlp.2", h, d.mlp, true)
		}
	}
	for i := 0; i < d.single; i++ {
		p := "single_blocks." + itoaB(i) + "."
		t.linear(p+"linear1", 3*h+d.mlp, h, true)
		t.linear(p+"linear2", h, h+d.mlp, true)
		t.scale(p+"norm.query_norm", d.headDim)
		t.scale(p+"norm.key_norm", d.headDim)
		t.linear(p+"modulation.lin", 3*h, h, true)
	}
	t.linear("final_layer.linear", patch[0]*patch[1]*patch[2]*d.out, h, true)
	t.linear("final_layer.adaLN_modulation.1", 2*h, h, true)
	return t.ps
}

// hunyuanPipeRenameB is ComfyUI's diffusion-pipe/Tencent rename of a
// native module path (comfy/lora.py, HunyuanVideo branch).
func hunyuanPipeRenameB(module string) string {
	k := module + "."
	for _, r := range [][2]string{
		{"_mod.lin.", "_mod.linear."}, {"_attn.qkv.", "_attn_qkv."}, {"_attn.proj.", "_attn_proj."},
		{"mlp.0.", "mlp.fc1."}, {"mlp.2.", "mlp.fc2."},
		{".modulation.lin.", ".modulation.linear."},
	} {
		k = strings.ReplaceAll(k, r[0], r[1])
	}
	return strings.TrimSuffix(k, ".")
}

func hunyuanVideoAliases() []Alias {
	d := hunyuanDims(Full)
	h := d.hidden
	var a aliasesB
	// 1. diffusion-pipe / Tencent names exactly as ComfyUI derives them from
	// every weight key (double_blocks.0.img_attn_qkv, img_mod.linear,
	// img_mlp.fc1, single_blocks.0.modulation.linear, refiner self_attn_qkv,
	// mlp.fc1, ...).
	seen := map[string]bool{}
	for _, p := range hunyuanVideoParams(Full) {
		mod, suffix, ok := ModuleOf(p.Name)
		if !ok || suffix != "weight" || seen[mod] {
			continue
		}
		seen[mod] = true
		if r := hunyuanPipeRenameB(mod); r != mod {
			a.to(r, mod)
		}
	}
	// 2. Further Tencent-original names (HunyuanVideo's own checkpoint and
	// musubi-tuner) that the rename above does not produce.
	for _, e := range []string{"time_in", "guidance_in", "txt_in.t_embedder"} {
		a.to(e+".mlp.0", e+".in_layer")
		a.to(e+".mlp.2", e+".out_layer")
	}
	a.to("txt_in.c_embedder.linear_1", "txt_in.c_embedder.in_layer")
	a.to("txt_in.c_embedder.linear_2", "txt_in.c_embedder.out_layer")
	for i := 0; i < d.double; i++ {
		p := "double_blocks." + itoaB(i) + "."
		for _, s := range []string{"img", "txt"} {
			a.to(p+s+"_attn_q_norm", p+s+"_attn.norm.query_norm")
			a.to(p+s+"_attn_k_norm", p+s+"_attn.norm.key_norm")
		}
	}
	for i := 0; i < d.single; i++ {
		p := "single_blocks." + itoaB(i) + "."
		a.to(p+"q_norm", p+"norm.query_norm")
		a.to(p+"k_norm", p+"norm.key_norm")
	}
	// 3. diffusers HunyuanVideoTransformer3DModel names (not mapped by
	// ComfyUI; from diffusers' convert_hunyuan_video_to_diffusers).
	for i := 0; i < d.double; i++ {
		f, n := "transformer_blocks."+itoaB(i)+".", "double_blocks."+itoaB(i)+"."
		for j, q := range []string{"to_q", "to_k", "to_v"} {
			a.slice(f+"attn."+q, n+"img_attn.qkv", int64(j)*h, h)
		}
		for j, q := range []string{"add_q_proj", "add_k_proj", "add_v_proj"} {
			a.slice(f+"attn."+q, n+"txt_attn.qkv", int64(j)*h, h)
		}
		a.to(f+"attn.to_out.0", n+"img_attn.proj")
		a.to(f+"attn.to_add_out", n+"txt_attn.proj")
		a.to(f+"attn.norm_q", n+"img_attn.norm.query_norm")
		a.to(f+"attn.norm_k", n+"img_attn.norm.key_norm")
		a.to(f+"attn.norm_added_q", n+"txt_attn.norm.query_norm")
		a.to(f+"attn.norm_added_k", n+"txt_attn.norm.key_norm")
		a.to(f+"norm1.linear", n+"img_mod.lin")
		a.to(f+"norm1_context.linear", n+"txt_mod.lin")
		a.to(f+"ff.net.0.proj", n+"img_mlp.0")
		a.to(f+"ff.net.2", n+"img_mlp.2")
		a.to(f+"ff_context.net.0.proj", n+"txt_mlp.0")
		a.to(f+"ff_context.net.2", n+"txt_mlp.2")
	}
	for i := 0; i < d.single; i++ {
		f, n := "single_transformer_blocks."+itoaB(i)+".", "single_blocks."+itoaB(i)+"."
		for j, q := range []string{"to_q", "to_k", "to_v"} {
			a.slice(f+"attn."+q, n+"linear1", int64(j)*h, h)
		}
		a.slice(f+"proj_mlp", n+"linear1", 3*h, d.mlp)
		a.to(f+"proj_out", n+"linear2")
		a.to(f+"norm.linear", n+"modulation.lin")
		a.to(f+"attn.norm_q", n+"norm.query_norm")
		a.to(f+"attn.norm_k", n+"norm.key_norm")
	}
	for i := 0; i < d.refiner; i++ {
		f := "context_embedder.token_refiner.refiner_blocks." + itoaB(i) + "."
		n := "txt_in.individual_token_refiner.blocks." + itoaB(i) + "."
		for j, q := range []string{"to_q", "to_k", "to_v"} {
			a.slice(f+"attn."+q, n+"self_attn.qkv", int64(j)*h, h)
		}
		a.to(f+"attn.to_out.0", n+"self_attn.proj")
		a.to(f+"norm_out.linear", n+"adaLN_modulation.1")
		a.to(f+"ff.net.0.proj", n+"mlp.0")
		a.to(f+"ff.net.2", n+"mlp.2")
		a.to(f+"norm1", n+"norm1")
		a.to(f+"norm2", n+"norm2")
	}
	a.to("x_embedder.proj", "img_in.proj")
	for _, e := range [][2]string{
		{"time_text_embed.timestep_embedder", "time_in"},
		{"time_text_embed.guidance_embedder", "guidance_in"},
		{"time_text_embed.text_embedder", "vector_in"},
		{"context_embedder.time_text_embed.timestep_embedder", "txt_in.t_embedder"},
		{"context_embedder.time_text_embed.text_embedder", "txt_in.c_embedder"},
	} {
		a.to(e[0]+".linear_1", e[1]+".in_layer")
		a.to(e[0]+".linear_2", e[1]+".out_layer")
	}
	a.to("context_embedder.proj_in", "txt_in.input_embedder")
	a.to("proj_out", "final_layer.linear")
	a.swapped("norm_out.linear", "final_layer.adaLN_modulation.1")
	return a.as
}

func detectHunyuanVideo(v View) (bool, string) {
	const key = "txt_in.individual_token_refiner.blocks.0.norm1.weight"
	if !v.Has(key) {
		return false, ""
	}
	in := v.Shape("img_in.proj.weight")
	hidden, inCh := dimB(v, "img_in.proj.weight", 0), dimB(v, "img_in.proj.weight", 1)
	var variant string
	switch {
	case v.Has("cond_type_embedding.weight") && v.Has("vision_in.proj.0.weight"):
		variant = "HunyuanVideo 1.5"
	case v.Has("byt5_in.fc1.weight") || len(in) == 4:
		variant = "HunyuanImage 2.1"
	case inCh == 16:
		variant = "HunyuanVideo T2V"
	case inCh == 33:
		variant = "HunyuanVideo I2V"
	case inCh == 32:
		variant = "SkyReels I2V"
	default:
		variant = fmt.Sprintf("HunyuanVideo (in_channels %d)", inCh)
	}
	if v.Has("guidance_in.in_layer.weight") {
		variant += ", guidance embedding"
	}
	return true, fmt.Sprintf("%s; %s (hidden %d, in_channels %d); %d double + %d single blocks; %s",
		keyEvidenceB(v, key), keyEvidenceB(v, "img_in.proj.weight"), hidden, inCh,
		v.Count("double_blocks."), v.Count("single_blocks."), variant)
}

// hunyuanSource is where the HunyuanVideo widths were checked.
const hunyuanSource = "diffusers src/diffusers/models/transformers/transformer_hunyuan_video.py @ed6847a1 (1.0: 24 heads × 128, 20 double + 40 single blocks, mlp_ratio 4) and " +
	"transformer_hunyuan_video15.py @0687a407 (1.5: 16 heads × 128 = 2048, 54 dual-stream blocks, no single blocks, in 65, out 32, patch 1, Qwen2.5-VL 3584 text features)"

func init() {
	v10 := hunyuanDims(Full)
	v10i2v := v10
	v10i2v.in = 33
	v15 := hunyuanDimsB{hidden: 2048, headDim: 128, mlp: 8192, ctx: 3584, in: 65, out: 32, freq: 256, double: 54, refiner: 2, v15: true}
	registerVariants("hunyuan-video",
		Variant{Name: "HunyuanVideo 1.0 T2V", Width: 3072, Depth: "20 double + 40 single blocks", Only: "vector_in (CLIP-L pooled), guidance_in", Source: hunyuanSource,
			Params: func() []Param { return hunyuanTable(v10) }},
		Variant{Name: "HunyuanVideo 1.0 I2V", Width: 3072, Depth: "20 double + 40 single blocks", Only: "img_in input 33 channels", Source: hunyuanSource,
			Params: func() []Param { return hunyuanTable(v10i2v) }},
		Variant{Name: "HunyuanVideo 1.5", Width: 2048, Depth: "54 double blocks", Only: "cond_type_embedding (also byt5_in, vision_in, not in the table); no single blocks, no vector_in/guidance_in", Source: hunyuanSource,
			Params: func() []Param { return hunyuanTable(v15) }, Adds: true},
	)
	Register(&Arch{
		ID:                "hunyuan-video",
		Name:              "HunyuanVideo",
		Part:              DiT,
		Priority:          12,
		Params:            hunyuanVideoParams,
		Aliases:           hunyuanVideoAliases,
		DiffusersPrefixes: []string{"transformer."},
		Encoders: []Encoder{
			{Part: LLM, Comfy: "llama", CheckpointPrefix: "text_encoders.llama.transformer."},
			{Part: CLIPL, Comfy: "clip_l", Kohya: []string{"lora_te1_"}, Model: CLIPLParams, CheckpointPrefix: "text_encoders.clip_l.transformer."},
		},
		DiffusionPrefix: "model.diffusion_model.",
		VAEPrefix:       "vae.",
		Detect:          detectHunyuanVideo,
		ModelSpec:       "hunyuan-video",
	})
}
