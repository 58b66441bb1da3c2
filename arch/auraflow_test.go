package arch

import "testing"

func TestAuraParams(t *testing.T) {
	// AuraFlow v0.x: 6.8B parameters
	mmCheckParams(t, "auraflow", 6_800_000_000, 1, []mmShapeCase{
		{"t_embedder.mlp.0.weight", []int64{3072, 256}},
		{"cond_seq_linear.weight", []int64{3072, 2048}},
		{"init_x_linear.weight", []int64{3072, 16}},
		{"positional_encoding", []int64{1, 1024, 3072}},
		{"register_tokens", []int64{1, 8, 3072}},
		{"double_layers.0.attn.w1q.weight", []int64{3072, 3072}},
		{"double_layers.3.mlpC.c_fc1.weight", []int64{8192, 3072}},
		{"double_layers.3.mlpX.c_proj.weight", []int64{3072, 8192}},
		{"double_layers.0.modC.1.weight", []int64{18432, 3072}},
		{"single_layers.31.modCX.1.weight", []int64{18432, 3072}},
		{"single_layers.0.attn.w1o.weight", []int64{3072, 3072}},
		{"final_linear.weight", []int64{16, 3072}},
		{"modF.1.weight", []int64{6144, 3072}},
	})
}

func TestAuraAliases(t *testing.T) { mmCheckAliases(t, "auraflow") }

func TestAuraDetect(t *testing.T) {
	mmCheckDetect(t, "auraflow", ": AuraFlow")
	a := mmArch(t, "auraflow")
	if ok, ev := a.Detect(ParamsView(a.Params(Full))); ev != "double_layers.0.attn.w1q.weight + 4 double_layers + 32 single_layers + cond_seq_linear.weight [3072 2048]: AuraFlow" {
		t.Errorf("%v %q", ok, ev)
	}
}

func TestAuraLoRANames(t *testing.T) {
	l := mmListing{Shapes: map[string][]int64{}}
	add := func(k string, s ...int64) { l.Keys = append(l.Keys, k); l.Shapes[k] = s }
	add("transformer.joint_transformer_blocks.0.attn.to_q.lora_A.weight", 16, 3072)
	add("transformer.joint_transformer_blocks.3.ff_context.out_projection.lora_A.weight", 16, 8192)
	add("transformer.single_transformer_blocks.31.attn.to_out.0.lora_B.weight", 3072, 16)
	add("transformer.single_transformer_blocks.0.norm1.linear.lora_B.weight", 18432, 16)
	add("transformer.norm_out.linear.lora_B.weight", 6144, 16)
	add("lora_unet_single_layers_7_mlp_c_fc2.lora_up.weight", 8192, 16)
	mmCheckListing(t, mmArch(t, "auraflow"), l)
}
