package merge

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

// ComfyUI maps both lora_te_ and lora_te1_ onto CLIP-L whenever the model
// has one (model_lora_keys_clip); SDXL's lora_te1_text_projection is
// accepted but has nothing to patch in a checkpoint file.
func TestMergeCLIPPrefixes(t *testing.T) {
	clip := map[string][]int64{}
	for _, p := range arch.CLIPLParams(arch.Tiny) {
		clip[p.Name] = p.Shape
	}
	lora := func(prefix, hf string) []rawTensor {
		s := clip[hf+".weight"]
		if hf == "text_projection" {
			s = []int64{16, 16} // ComfyUI's CLIP-L projection at the Tiny width
		}
		if s == nil {
			t.Fatalf("no Tiny CLIP-L %s", hf)
		}
		return []rawTensor{
			{prefix + ".lora_down.weight", []int64{2, s[1]}, ramp(int(2*s[1]), 1)},
			{prefix + ".lora_up.weight", []int64{s[0], 2}, ramp(int(2*s[0]), 1)},
		}
	}
	for _, tc := range []struct {
		arch, prefix, hf, wantKey, wantSkip string
	}{
		{"sd1", "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", "text_model.encoder.layers.0.self_attn.q_proj",
			"cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", ""},
		{"sdxl", "lora_te_text_model_encoder_layers_1_mlp_fc1", "text_model.encoder.layers.1.mlp.fc1",
			"conditioner.embedders.0.transformer.text_model.encoder.layers.1.mlp.fc1.weight", ""},
		{"flux1", "lora_te_text_model_encoder_layers_0_self_attn_out_proj", "text_model.encoder.layers.0.self_attn.out_proj",
			"text_encoders.clip_l.transformer.text_model.encoder.layers.0.self_attn.out_proj.weight", ""},
		{"sdxl", "lora_te1_text_projection", "text_projection", "", "stores no clip_l text_projection"},
	} {
		dir := t.TempDir()
		bp, lp := filepath.Join(dir, "base.safetensors"), filepath.Join(dir, "lora.safetensors")
		ps, err := fixture.CheckpointParams(fixture.CheckpointSpec{Arch: tc.arch, Size: arch.Tiny})
		if err != nil {
			t.Fatal(err)
		}
		var kept []arch.Param
		for _, p := range ps {
			// SDXL checkpoints store CLIP-L without text_projection
			if !strings.HasSuffix(p.Name, "embedders.0.transformer.text_projection.weight") {
				kept = append(kept, p)
			}
		}
		if err := fixture.WriteSparse(bp, kept, dtype.F16, nil); err != nil {
			t.Fatal(err)
		}
		writeF32(t, lp, lora(tc.prefix, tc.hf))
		p, err := NewPlan(bp, []Input{{Path: lp, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.arch, tc.prefix, err)
		}
		p.Close()
		if len(p.Unmatched) > 0 {
			t.Errorf("%s %s: unmatched %v", tc.arch, tc.prefix, p.Unmatched)
		}
		if tc.wantKey != "" && (len(p.Patches) != 1 || p.Patches[0].Key != tc.wantKey) {
			t.Errorf("%s %s: patches %v, want one on %s", tc.arch, tc.prefix, p.Patches, tc.wantKey)
		}
		if tc.wantSkip != "" && (len(p.Skipped) != 2 || !strings.Contains(p.Skipped[0].Reason, tc.wantSkip)) {
			t.Errorf("%s %s: skipped %v", tc.arch, tc.prefix, p.Skipped)
		}
	}
}
