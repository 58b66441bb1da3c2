package merge

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/internal/fixture"
)

// fuzzPrefixes are SD1 module names of the demo files: a text-encoder
// linear [32,16], a UNet attention 1x1 conv and a UNet 3x3 conv [10,10,3,3].
var fuzzPrefixes = []string{
	"lora_te_text_model_encoder_layers_0_mlp_fc1",
	"lora_unet_down_blocks_0_attentions_0_proj_in",
	"lora_unet_down_blocks_0_resnets_0_conv1",
	"lora_te_text_model_encoder_layers_0_self_attn_q_proj",
}

const demoBase = "../testdata/demo/sd15-tiny.safetensors"

// errorOneLine fails on a multi-line or panic-looking error.
func errorOneLine(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "goroutine")) {
		t.Fatalf("error is not one line: %q", err)
	}
}

// FuzzMergePlan runs the merge planner and the adapter math on a crafted
// LoRA (random shapes, ranks, dtypes, algorithm mixes) into the demo SD1.5
// checkpoint: no panic, one-line errors.
func FuzzMergePlan(f *testing.F) {
	f.Add([]byte{0x01, 2, 0x77, 0, 0, 0x00, 2, 0x61, 0, 0, 0x02, 0, 0, 0, 0})
	f.Add([]byte{0x44, 2, 0x15, 0, 1, 0x45, 2, 0x15, 0, 1, 0x46, 2, 0x15, 0, 1, 0x47, 2, 0x15, 0, 1})
	f.Add([]byte{0x4a, 4, 0x06, 0x3, 0, 0x4b, 4, 0x16, 0, 0, 0x4c, 2, 0x51, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ts := fixture.FuzzLoRA(data, fuzzPrefixes, 12)
		if len(ts) == 0 {
			return
		}
		dir := t.TempDir()
		lp := filepath.Join(dir, "l.safetensors")
		if fixture.WriteFuzzLoRA(lp, ts) != nil {
			return
		}
		p, err := NewPlan(demoBase, []Input{{Path: lp, StrengthModel: 1, StrengthClip: 0.5}}, PlanOptions{})
		errorOneLine(t, err)
		if err != nil {
			return
		}
		defer p.Close()
		p.Unmatched = nil
		_, err = p.Execute(context.Background(), filepath.Join(dir, "o.safetensors"), Options{})
		errorOneLine(t, err)
	})
}

// FuzzLoRAMerge merges two crafted LoRAs into one (exact and
// re-compressed): no panic, one-line errors.
func FuzzLoRAMerge(f *testing.F) {
	f.Add([]byte{0x01, 2, 0x77, 0, 0, 0x00, 2, 0x61, 0, 0, 0x02, 0, 0, 0, 0}, []byte{0x01, 2, 0x77, 0, 0, 0x00, 2, 0x61, 0, 0})
	f.Add([]byte{0x01, 2, 0x77, 0, 0, 0x00, 2, 0x61, 0, 0}, []byte{0x01, 2, 0x76, 0, 0, 0x00, 2, 0x61, 0, 0})
	f.Add([]byte{0x41, 4, 0x2e, 0, 0, 0x40, 4, 0x66, 0x3, 0}, []byte{0x41, 2, 0x2e, 0, 0, 0x40, 2, 0x66, 0, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		dir := t.TempDir()
		var ins []Input
		for i, d := range [][]byte{a, b} {
			ts := fixture.FuzzLoRA(d, fuzzPrefixes, 8)
			if len(ts) == 0 {
				return
			}
			p := filepath.Join(dir, string(rune('a'+i))+".safetensors")
			if fixture.WriteFuzzLoRA(p, ts) != nil {
				return
			}
			ins = append(ins, Input{Path: p, StrengthModel: 0.7, StrengthClip: 1})
		}
		for _, rank := range []int{0, 2} {
			_, err := MergeLoRAs(ins, filepath.Join(dir, "o.safetensors"), LoRAMergeOptions{Arch: "sd1", Rank: rank, Overwrite: true, MaxDense: 1 << 16})
			errorOneLine(t, err)
		}
	})
}
