package arch

import (
	"reflect"
	"strings"
	"testing"
)

func TestSD3Params(t *testing.T) {
	// SD3.5 Large: 8.1B; the exact count of sd3.5_large.safetensors' MMDiT
	mmCheckParams(t, "sd3", 8_146_280_768, 0, []mmShapeCase{
		{"x_embedder.proj.weight", []int64{2432, 16, 2, 2}},
		{"pos_embed", []int64{1, 36864, 2432}},
		{"context_embedder.weight", []int64{2432, 4096}},
		{"y_embedder.mlp.0.weight", []int64{2432, 2048}},
		{"t_embedder.mlp.0.weight", []int64{2432, 256}},
		{"joint_blocks.0.x_block.attn.qkv.weight", []int64{7296, 2432}},
		{"joint_blocks.0.context_block.attn.ln_q.weight", []int64{64}},
		{"joint_blocks.0.context_block.adaLN_modulation.1.weight", []int64{14592, 2432}},
		{"joint_blocks.0.x_block.mlp.fc1.weight", []int64{9728, 2432}},
		{"joint_blocks.37.context_block.adaLN_modulation.1.weight", []int64{4864, 2432}},
		{"joint_blocks.37.x_block.mlp.fc2.weight", []int64{2432, 9728}},
		{"final_layer.linear.weight", []int64{64, 2432}},
		{"final_layer.adaLN_modulation.1.weight", []int64{4864, 2432}},
	})
	v := ParamsView(mmArch(t, "sd3").Params(Full))
	for _, absent := range []string{"joint_blocks.37.context_block.attn.proj.weight", "joint_blocks.37.context_block.mlp.fc1.weight"} {
		if v.Has(absent) {
			t.Errorf("sd3 has %s", absent)
		}
	}
}

// TestSD3CheckpointMatchesCorpus: Full is exactly the model.diffusion_model.
// part of sd3.5_large.safetensors, and the VAE its first_stage_model part.
func TestSD3CheckpointMatchesCorpus(t *testing.T) {
	l := mmLoad(t, "corpus/checkpoint-keys/sd3.5-large-mmditx.json")
	a := mmArch(t, "sd3")
	got := map[string][]int64{}
	for _, p := range a.Params(Full) {
		got[a.DiffusionPrefix+p.Name] = p.Shape
	}
	for _, p := range a.VAE(Full) {
		got[a.VAEPrefix+p.Name] = p.Shape
	}
	for _, k := range l.Keys {
		s, ok := got[k]
		if !ok {
			t.Errorf("missing %s %v", k, l.Shapes[k])
			continue
		}
		if !reflect.DeepEqual(s, l.Shapes[k]) {
			t.Errorf("%s: %v, real %v", k, s, l.Shapes[k])
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("generated but not in the checkpoint: %s", k)
	}
}

func TestSD3Aliases(t *testing.T) {
	mmCheckAliases(t, "sd3")
	var swaps []string
	for _, al := range mmArch(t, "sd3").Aliases() {
		if al.SwapScaleShift {
			swaps = append(swaps, al.Name+"→"+al.Target)
		}
		if strings.Contains(al.Name, "attn2") && al.Slice != nil && al.Slice.Size != 1536 {
			t.Errorf("attn2 alias %s: slice %+v is not of SD3.5 Medium's width", al.Name, *al.Slice)
		}
	}
	want := []string{"transformer_blocks.37.norm1_context.linear→joint_blocks.37.context_block.adaLN_modulation.1",
		"norm_out.linear→final_layer.adaLN_modulation.1"}
	if !reflect.DeepEqual(swaps, want) {
		t.Errorf("swapped aliases %v, want %v", swaps, want)
	}
}

func TestSD3Detect(t *testing.T) {
	mmCheckDetect(t, "sd3", ": SD3.5")
	a := mmArch(t, "sd3")
	full := ParamsView(a.Params(Full))
	if ok, ev := a.Detect(full); !ok || ev != "joint_blocks.0.context_block.attn.qkv.weight + x_embedder.proj.weight [2432 16 2 2] + 38 joint_blocks + attn.ln_q: SD3.5 Large" {
		t.Errorf("evidence %q", ev)
	}
	medium := mmVariant(full, map[string][]int64{"joint_blocks.0.x_block.attn2.qkv.weight": {4608, 1536}})
	if ok, ev := a.Detect(medium); !ok || !strings.HasSuffix(ev, "SD3.5 Medium") {
		t.Errorf("3.5 medium: %q", ev)
	}
	sd3m := mmView{}
	for k, s := range full {
		keep := !strings.HasPrefix(k, "joint_blocks.")
		for i := 0; i < 24; i++ {
			keep = keep || strings.HasPrefix(k, "joint_blocks."+mmI(i)+".")
		}
		if keep && !strings.Contains(k, ".ln_") {
			sd3m[k] = s
		}
	}
	sd3m["x_embedder.proj.weight"] = []int64{1536, 16, 2, 2}
	if ok, ev := a.Detect(sd3m); !ok || !strings.HasSuffix(ev, ": SD3 Medium") {
		t.Errorf("sd3 medium: %q", ev)
	}
}

// A diffusers SD3 LoRA in the three naming styles ComfyUI accepts.
func TestSD3LoRANames(t *testing.T) {
	l := mmListing{Shapes: map[string][]int64{}}
	add := func(k string, s ...int64) { l.Keys = append(l.Keys, k); l.Shapes[k] = s }
	add("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", 2432, 16)
	add("transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight", 16, 2432)
	add("transformer.transformer_blocks.36.ff_context.net.0.proj.lora_B.weight", 9728, 16)
	add("transformer.transformer_blocks.37.norm1_context.linear.lora_B.weight", 4864, 16)
	add("lora_transformer_transformer_blocks_0_attn_add_k_proj.lora_down.weight", 16, 2432)
	add("lora_transformer_proj_out.lora_up.weight", 64, 16)
	add("lora_unet_joint_blocks_5_x_block_mlp_fc2.lora_down.weight", 16, 9728)
	add("diffusion_model.joint_blocks.37.context_block.attn.qkv.lora_B.weight", 7296, 16)
	mmCheckListing(t, mmArch(t, "sd3"), l)
}
