package safetensors

import (
	"fmt"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
)

// loraSpecs returns the 792 tensors of a kohya-style SD1.5 LoRA of rank 16:
// 192 U-Net and 72 text-encoder modules, each with lora_down, lora_up and
// alpha.
func loraSpecs() []TensorSpec {
	type mod struct {
		name    string
		in, out int64
	}
	var mods []mod
	attn := func(prefix string, ch int64) {
		tb := prefix + "_transformer_blocks_0_"
		mods = append(mods, mod{prefix + "_proj_in", ch, ch}, mod{prefix + "_proj_out", ch, ch})
		for _, a := range []string{"attn1", "attn2"} {
			for _, p := range []string{"to_q", "to_k", "to_v", "to_out_0"} {
				in := ch
				if a == "attn2" && (p == "to_k" || p == "to_v") {
					in = 768
				}
				mods = append(mods, mod{tb + a + "_" + p, in, ch})
			}
		}
		mods = append(mods, mod{tb + "ff_net_0_proj", ch, ch * 8}, mod{tb + "ff_net_2", ch * 4, ch})
	}
	chans := []int64{320, 640, 1280}
	for b := 0; b < 3; b++ {
		for a := 0; a < 2; a++ {
			attn(fmt.Sprintf("lora_unet_down_blocks_%d_attentions_%d", b, a), chans[b])
		}
	}
	attn("lora_unet_mid_block_attentions_0", 1280)
	for b := 1; b < 4; b++ {
		for a := 0; a < 3; a++ {
			attn(fmt.Sprintf("lora_unet_up_blocks_%d_attentions_%d", b, a), chans[3-b])
		}
	}
	for l := 0; l < 12; l++ {
		p := fmt.Sprintf("lora_te_text_model_encoder_layers_%d_", l)
		for _, m := range []string{"self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj"} {
			mods = append(mods, mod{p + m, 768, 768})
		}
		mods = append(mods, mod{p + "mlp_fc1", 768, 3072}, mod{p + "mlp_fc2", 3072, 768})
	}
	var specs []TensorSpec
	for _, m := range mods {
		specs = append(specs,
			TensorSpec{Name: m.name + ".lora_down.weight", DType: dtype.F16, Shape: []int64{16, m.in}},
			TensorSpec{Name: m.name + ".lora_up.weight", DType: dtype.F16, Shape: []int64{m.out, 16}},
			TensorSpec{Name: m.name + ".alpha", DType: dtype.F16, Shape: []int64{}},
		)
	}
	return specs
}

// loraMetadata returns ~30 kohya ss_* metadata entries, including a 5 KB
// ss_tag_frequency JSON string (escaped quotes in the header).
func loraMetadata() map[string]string {
	md := map[string]string{"format": "pt"}
	for i, k := range []string{"ss_session_id", "ss_training_started_at", "ss_output_name", "ss_learning_rate",
		"ss_text_encoder_lr", "ss_unet_lr", "ss_num_train_images", "ss_num_reg_images", "ss_num_batches_per_epoch",
		"ss_num_epochs", "ss_batch_size_per_device", "ss_total_batch_size", "ss_gradient_checkpointing",
		"ss_gradient_accumulation_steps", "ss_max_train_steps", "ss_lr_warmup_steps", "ss_lr_scheduler",
		"ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_mixed_precision", "ss_full_fp16",
		"ss_v2", "ss_resolution", "ss_clip_skip", "ss_max_token_length", "ss_seed", "ss_noise_offset",
		"ss_sd_model_name", "ss_new_sd_model_hash"} {
		md[k] = fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%7))
	}
	md["ss_dataset_dirs"] = `{"10_sks woman": {"n_repeats": 10, "img_count": 42}}`
	var tf strings.Builder
	tf.WriteString(`{"10_sks woman": {`)
	for i := 0; tf.Len() < 5000; i++ {
		if i > 0 {
			tf.WriteString(", ")
		}
		fmt.Fprintf(&tf, `"tag number %d, smiling, looking at viewer": %d`, i, i%37+1)
	}
	tf.WriteString("}}")
	md["ss_tag_frequency"] = tf.String()
	return md
}

// loraHeaderFile returns the header prefix (8+N bytes) and the file size of
// the benchmark LoRA.
func loraHeaderFile(tb testing.TB) ([]byte, int64) {
	specs := loraSpecs()
	if len(specs) != 792 {
		tb.Fatalf("%d specs", len(specs))
	}
	_, sizes, hdr, err := buildHeader(specs, loraMetadata())
	if err != nil {
		tb.Fatal(err)
	}
	fileSize := int64(len(hdr))
	for _, s := range sizes {
		fileSize += s
	}
	return hdr, fileSize
}

// BenchmarkParseHeader parses the header of a realistic 792-tensor LoRA
// (about 100 KB of JSON including a 5 KB ss_tag_frequency).
func BenchmarkParseHeader(b *testing.B) {
	hdr, fileSize := loraHeaderFile(b)
	b.SetBytes(int64(len(hdr) - 8))
	b.ReportAllocs()
	for b.Loop() {
		h, err := ParseHeader(hdr, fileSize)
		if err != nil || len(h.Tensors) != 792 {
			b.Fatal(err)
		}
	}
}
