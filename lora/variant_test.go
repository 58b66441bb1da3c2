package lora

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
)

// variantListing builds a synthetic rank-4 LoRA over every 2-D weight of
// the variant's own table (comfy names: diffusion_model.<module>), so the
// listing carries the variant's widths and its variant-only modules.
func variantListing(ps []arch.Param) []TensorRef {
	var ts []TensorRef
	for _, p := range ps {
		mod, ok := strings.CutSuffix(p.Name, ".weight")
		if !ok || len(p.Shape) != 2 {
			continue
		}
		ts = append(ts,
			TensorRef{Key: "diffusion_model." + mod + ".lora_A.weight", Shape: []int64{4, p.Shape[1]}},
			TensorRef{Key: "diffusion_model." + mod + ".lora_B.weight", Shape: []int64{p.Shape[0], 4}})
	}
	return ts
}

// Every declared variant of every architecture: a LoRA over the variant's
// table is that architecture, the variant is among the best-fitting ones,
// and every shape fits.
func TestVariantDetectionEveryVariant(t *testing.T) {
	n := 0
	for _, a := range arch.All() {
		for _, v := range a.Variants() {
			n++
			t.Run(a.ID+"/"+v.Name, func(t *testing.T) {
				an := Analyze(variantListing(v.Params()), nil)
				f := an.FitArch(arch.All(), nil)
				if f.Arch != a {
					t.Fatalf("architecture %v, want %s (%s)", f.Arch, a.ID, f.Evidence)
				}
				// no variant named only when every variant fits alike
				// (Qwen-Image and -Edit share one table)
				allAlike := len(f.VariantFit) > 1 && slices.Min(f.VariantFit) == slices.Max(f.VariantFit)
				if !slices.Contains(f.Variants, v.Name) && !(len(f.Variants) == 0 && allAlike) {
					t.Errorf("variants %q do not include %q (%s)", f.Variants, v.Name, f.Evidence)
				}
				if f.Confidence != "high" && f.Confidence != "medium" {
					t.Errorf("confidence %s (%s)", f.Confidence, f.Evidence)
				}
				if !strings.Contains(f.Evidence, "shapes fit") {
					t.Errorf("evidence %q", f.Evidence)
				}
			})
		}
	}
	if n < 20 {
		t.Errorf("only %d variants declared", n)
	}
}

// Variants whose tables differ are told apart: the listing of one fits no
// other variant as well.
func TestVariantDetectionDistinct(t *testing.T) {
	for _, tc := range []struct {
		id, variant string
		want        []string
	}{
		{"sd3", "SD3 Medium", []string{"SD3 Medium"}},
		{"sd3", "SD3.5 Medium", []string{"SD3.5 Medium"}},
		{"sd3", "SD3.5 Large", []string{"SD3.5 Large"}},
		{"flux2", "FLUX.2 dev", []string{"FLUX.2 dev"}},
		{"flux2", "FLUX.2 klein 9B", []string{"FLUX.2 klein 9B"}},
		{"flux2", "FLUX.2 klein 4B", []string{"FLUX.2 klein 4B"}},
		{"wan", "Wan 2.1 T2V 1.3B", []string{"Wan 2.1 T2V 1.3B"}},
		{"wan", "Wan 2.2 TI2V 5B", []string{"Wan 2.2 TI2V 5B"}},
		{"wan", "Wan 2.1 I2V 14B", []string{"Wan 2.1 I2V 14B"}},
		// a T2V 14B LoRA is loadable on every 14B model (I2V adds modules)
		{"wan", "Wan 2.1 T2V 14B", []string{"Wan 2.1 T2V 14B", "Wan 2.1 I2V 14B", "Wan 2.2 T2V A14B (high/low noise)", "Wan 2.2 I2V A14B (high/low noise)"}},
		{"hunyuan-video", "HunyuanVideo 1.5", []string{"HunyuanVideo 1.5"}},
		{"flux1", "FLUX.1 Fill", []string{"FLUX.1 Fill"}},
		{"flux1", "FLUX.1 Canny/Depth", []string{"FLUX.1 Canny/Depth"}},
		// schnell lacks guidance_in: its LoRAs load on dev too
		{"flux1", "FLUX.1 schnell", []string{"FLUX.1 dev", "FLUX.1 Kontext", "FLUX.1 schnell"}},
		{"flux1", "FLUX.1 dev", []string{"FLUX.1 dev", "FLUX.1 Kontext"}},
		// identical tables: the file cannot say which, so no variant is named
		{"qwen-image", "Qwen-Image", nil},
	} {
		a, _ := arch.ByID(tc.id)
		i, ok := a.VariantIndex(tc.variant)
		if !ok {
			t.Fatalf("%s has no variant %q", tc.id, tc.variant)
		}
		f := Analyze(variantListing(a.Variants()[i].Params()), nil).FitArch(arch.All(), nil)
		if f.Arch != a || !slices.Equal(f.Variants, tc.want) {
			t.Errorf("%s %s: %v %q, want %q (%s)", tc.id, tc.variant, f.Arch, f.Variants, tc.want, f.Evidence)
		}
	}
}

// The two misclassifications names alone produced: an SD3 Medium LoRA in
// diffusers names shared with Flux, and a 1536-wide SD3.5 Medium LyCORIS
// file whose names LTX-Video shares.
func TestVariantShapesBeatNames(t *testing.T) {
	var sd3m []TensorRef
	for i := 0; i < 5; i++ {
		p := fmt.Sprintf("transformer.transformer_blocks.%d.attn.add_q_proj", i)
		sd3m = append(sd3m, TensorRef{Key: p + ".lora_A.weight", Shape: []int64{16, 1536}},
			TensorRef{Key: p + ".lora_B.weight", Shape: []int64{1536, 16}})
	}
	f := Analyze(sd3m, nil).FitArch(arch.All(), nil)
	if f.Arch == nil || f.Arch.ID != "sd3" || !slices.Equal(f.Variants, []string{"SD3 Medium", "SD3.5 Medium"}) {
		t.Errorf("SD3 Medium diffusers LoRA: %v %q (%s)", f.Arch, f.Variants, f.Evidence)
	}
	// LyCORIS LoHa over SD3.5 Medium's diffusers names, attn2 included
	var loha []TensorRef
	for i := 0; i < 13; i++ {
		for _, m := range []string{"attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.2"} {
			in := int64(1536)
			if m == "ff.net.2" {
				in = 4 * 1536
			}
			p := "lycoris_transformer_blocks_" + fmt.Sprint(i) + "_" + strings.ReplaceAll(m, ".", "_")
			loha = append(loha,
				TensorRef{Key: p + ".hada_w1_a", Shape: []int64{1536, 8}}, TensorRef{Key: p + ".hada_w1_b", Shape: []int64{8, in}},
				TensorRef{Key: p + ".hada_w2_a", Shape: []int64{1536, 8}}, TensorRef{Key: p + ".hada_w2_b", Shape: []int64{8, in}},
				TensorRef{Key: p + ".alpha", Shape: []int64{}})
		}
	}
	f = Analyze(loha, nil).FitArch(arch.All(), nil)
	if f.Arch == nil || f.Arch.ID != "sd3" || !slices.Equal(f.Variants, []string{"SD3.5 Medium"}) || f.Confidence != "high" {
		t.Errorf("SD3.5 Medium LyCORIS: %v %q %s (%s)", f.Arch, f.Variants, f.Confidence, f.Evidence)
	}
}

// When no candidate's shapes fit, confidence is low and the evidence
// names the variant widths tried.
func TestVariantNoShapeFits(t *testing.T) {
	var ts []TensorRef
	for i := 0; i < 4; i++ {
		p := fmt.Sprintf("diffusion_model.joint_blocks.%d.x_block.attn.proj", i)
		ts = append(ts, TensorRef{Key: p + ".lora_A.weight", Shape: []int64{8, 1000}},
			TensorRef{Key: p + ".lora_B.weight", Shape: []int64{1000, 8}})
	}
	f := Analyze(ts, nil).FitArch(arch.All(), nil)
	if f.Arch == nil || f.Arch.ID != "sd3" || f.Confidence != "low" || len(f.Variants) != 0 {
		t.Fatalf("%v %s %q (%s)", f.Arch, f.Confidence, f.Variants, f.Evidence)
	}
	if !strings.Contains(f.Evidence, "SD3 Medium 1536, SD3.5 Medium 1536, SD3.5 Large 2432") {
		t.Errorf("evidence %q does not name the widths tried", f.Evidence)
	}
}
