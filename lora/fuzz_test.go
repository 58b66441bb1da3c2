package lora

import (
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
)

// FuzzAnalyze feeds arbitrary tensor names and shapes through the grammar
// and the architecture fit: nothing may panic, and every module's tensors
// must come from the input.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
		"unet:3:up", "text_encoder:1:down",
		"double_blocks.0.processor.qkv_lora1.down.weight",
		"oft_unet_double_blocks_1_txt_attn_qkv.oft_blocks.2",
		"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight",
		"double_blocks.0.img_attn.norm.key_norm.scale",
		"x.weight\nx.on_input",
		".lora_up.weight", "emb_params", ":::", "a.oft_blocks.99999999999999999999",
	} {
		f.Add(s, int64(4), int64(8))
	}
	archs := arch.All()
	f.Fuzz(func(t *testing.T, names string, d0, d1 int64) {
		var refs []TensorRef
		for _, n := range strings.Split(names, "\n") {
			refs = append(refs, TensorRef{Key: n, Shape: []int64{d0 % 1024, d1 % 1024}})
		}
		an := Analyze(refs, map[string]string{"ss_base_model_version": "sd_v1"})
		keys := map[string]bool{}
		for _, r := range refs {
			keys[r.Key] = true
		}
		for _, m := range an.Modules {
			for _, tr := range m.Tensors {
				if !keys[tr.Key] {
					t.Fatalf("module %q holds %q, which is not an input", m.Prefix, tr.Key)
				}
			}
			m.Algorithms()
			m.Rank()
			m.DeltaShape()
		}
		fit := an.FitArch(archs, nil)
		an.Parts(fit)
	})
}
