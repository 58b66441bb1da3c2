package convert

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/svd"
)

func oneLineErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "goroutine")) {
		t.Fatalf("error is not one line: %q", err)
	}
}

// FuzzResize resizes crafted SD1 LoRAs (random shapes, ranks, dtypes,
// algorithm mixes): no panic, one-line errors.
func FuzzResize(f *testing.F) {
	f.Add([]byte{0x01, 2, 0x77, 0, 0, 0x00, 2, 0x61, 0, 0, 0x02, 0, 0, 0, 0}, uint8(2))
	f.Add([]byte{0x01, 2, 0x07, 0, 0, 0x00, 2, 0x60, 0, 0}, uint8(0))
	f.Add([]byte{0x41, 4, 0x2e, 0, 0, 0x40, 4, 0x66, 0x3, 0, 0x43, 4, 0x32, 0x3, 0}, uint8(1))
	prefixes := []string{"lora_te_text_model_encoder_layers_0_mlp_fc1", "lora_unet_down_blocks_0_attentions_0_proj_in", "lora_unet_down_blocks_0_resnets_0_conv1"}
	rules := []string{"fixed:2", "sv_fro:0.9", "sv_ratio:4", "sv_cumulative:0.8"}
	f.Fuzz(func(t *testing.T, data []byte, rule uint8) {
		ts := fixture.FuzzLoRA(data, prefixes, 10)
		if len(ts) == 0 {
			return
		}
		dir := t.TempDir()
		in := filepath.Join(dir, "l.safetensors")
		if fixture.WriteFuzzLoRA(in, ts) != nil {
			return
		}
		r, err := svd.ParseRule(rules[int(rule)%len(rules)])
		if err != nil {
			t.Fatal(err)
		}
		_, err = Resize(in, filepath.Join(dir, "o.safetensors"), ResizeOptions{Rule: r, MaxRank: 4, MaxDense: 1 << 16})
		oneLineErr(t, err)
	})
}

// FuzzConvertFuseSplit converts crafted Flux LoRAs whose modules sit on
// fused (qkv, linear1) and split (to_q/to_k/to_v) weights to the formats
// that must split or fuse them, with and without --approximate: no panic,
// one-line errors.
func FuzzConvertFuseSplit(f *testing.F) {
	f.Add([]byte{0x01, 2, 0x87, 0, 0, 0x00, 2, 0x6a, 0, 0, 0x02, 0, 0, 0, 0}, uint8(0))
	f.Add([]byte{0x37, 2, 0x77, 0, 0, 0x36, 2, 0x61, 0, 0, 0x57, 2, 0x77, 0, 0, 0x56, 2, 0x61, 0, 0, 0x77, 2, 0x77, 0, 0, 0x76, 2, 0x61, 0, 0}, uint8(1))
	f.Add([]byte{0x84, 2, 0x77, 0, 0, 0x85, 2, 0x77, 0, 0, 0x86, 2, 0x77, 0, 0}, uint8(2))
	prefixes := []string{
		"lora_unet_double_blocks_0_img_attn_qkv",
		"transformer.transformer_blocks.0.attn.to_q",
		"transformer.transformer_blocks.0.attn.to_k",
		"transformer.transformer_blocks.0.attn.to_v",
		"lora_unet_single_blocks_0_linear1",
		"transformer.single_transformer_blocks.0.proj_mlp",
	}
	targets := []string{"diffusers", "comfy", "peft", "kohya"}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		ts := fixture.FuzzLoRA(data, prefixes, 12)
		if len(ts) == 0 {
			return
		}
		dir := t.TempDir()
		in := filepath.Join(dir, "l.safetensors")
		if fixture.WriteFuzzLoRA(in, ts) != nil {
			return
		}
		_, err := File(in, filepath.Join(dir, "o.safetensors"), Options{To: targets[int(mode)%len(targets)], Arch: "flux1",
			Approximate: mode&4 != 0, Rank: int(mode>>3) % 4, MaxDense: 1 << 16, Overwrite: true})
		oneLineErr(t, err)
	})
}
