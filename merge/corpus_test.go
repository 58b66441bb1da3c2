package merge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// writeSparse writes full-size zeros without using disk space
// (fixture.WriteSparse).
func writeSparse(t testing.TB, path string, ps []arch.Param, dt dtype.DType) {
	t.Helper()
	if err := fixture.WriteSparse(path, ps, dt, nil); err != nil {
		t.Fatal(err)
	}
}

func corpusFiles(t *testing.T) string {
	d := filepath.Join("..", "..", "shared", "corpus", "files")
	if _, err := os.Stat(d); err != nil {
		t.Skip("../shared/corpus not available")
	}
	return d
}

// TestCorpusLoRAsMapOntoFullSizeCheckpoints: every real LoRA in the corpus
// maps onto a full-size synthetic single-file checkpoint of its
// architecture with zero unmatched keys and every shape checked.
func TestCorpusLoRAsMapOntoFullSizeCheckpoints(t *testing.T) {
	dir := corpusFiles(t)
	tmp := t.TempDir()
	ckpts := map[string]string{}
	for _, c := range []struct{ file, arch string }{
		{"lycoris-lokr-sd15-r4_smart_falcon_4_lokr.safetensors", "sd1"},
		{"lycoris-lokr-sd15-r8_smart_falcon_8_lokr.safetensors", "sd1"},
		{"lycoris-lokr-sd15-r16_smart_falcon_16_lokr.safetensors", "sd1"},
		{"cloneofsimo-sd15-r4_analog_svd_rank4.safetensors", "sd1"},
		{"cloneofsimo-sd15-r1-pti_lora_disney.safetensors", "sd1"},
		{"cloneofsimo-sd15inpaint-r1-pti_lora_disney_inpainting.safetensors", "sd1"},
		{"diffusers-attnproc-sd15-r4_pokemon-diffusers.safetensors", "sd1"},
		{"diffusers-loradot-sd15-r4_timohavdk.safetensors", "sd1"},
		{"nonstandard-lora_unet_unet-sd15-r4_timohavdk_new.safetensors", "sd1"},
		{"diffusers-loradot-sd2x-r4-bf16_vfph55.safetensors", "sd2"},
		{"diffusers-loradot-sd2x-r4_justinjiang.safetensors", "sd2"},
		{"diffusers-flux-partial-r16_leighwoods.safetensors", "flux1"},
	} {
		t.Run(c.file, func(t *testing.T) {
			base := ckpts[c.arch]
			if base == "" {
				a, _ := arch.ByID(c.arch)
				base = filepath.Join(tmp, c.arch+".safetensors")
				ps := arch.CheckpointParams(a, arch.Full)
				if a.Part == arch.DiT {
					ps = a.Params(arch.Full) // a bare diffusion-model file, like flux1-dev.safetensors
				}
				writeSparse(t, base, ps, dtype.F16)
				ckpts[c.arch] = base
			}
			plan, err := NewPlan(base, []Input{{Path: filepath.Join(dir, c.file), StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			if plan.Arch.ID != c.arch {
				t.Fatalf("checkpoint detected as %s", plan.Arch.ID)
			}
			if len(plan.Unmatched) != 0 {
				t.Fatalf("%d unmatched, e.g. %v", len(plan.Unmatched), plan.Unmatched[0])
			}
			modules := map[string]bool{}
			for _, p := range plan.Patches {
				modules[p.Module.Prefix] = true
			}
			if len(modules) != len(plan.Analyses[0].Modules) {
				t.Fatalf("%d of %d modules patched", len(modules), len(plan.Analyses[0].Modules))
			}
		})
	}
}

// TestCorpusLoRAMergeExecutes merges a real SD1.5 LoRA into a full-size
// checkpoint holding the tensors it targets (sparse zeros), and checks the
// output equals the LoRA's delta there.
func TestCorpusLoRAMergeExecutes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~200 MB")
	}
	dir := corpusFiles(t)
	tmp := t.TempDir()
	a, _ := arch.ByID("sd1")
	full := filepath.Join(tmp, "full.safetensors")
	writeSparse(t, full, arch.CheckpointParams(a, arch.Full), dtype.F16)
	loraPath := filepath.Join(dir, "diffusers-loradot-sd15-r4_timohavdk.safetensors")
	plan, err := NewPlan(full, []Input{{Path: loraPath, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	for _, p := range plan.Patches {
		keep[p.Key] = true
	}
	plan.Close()
	var sub []arch.Param
	for _, p := range arch.CheckpointParams(a, arch.Full) {
		if keep[p.Name] {
			sub = append(sub, p)
		}
	}
	base := filepath.Join(tmp, "sub.safetensors")
	writeSparse(t, base, sub, dtype.F16)
	plan, err = NewPlan(base, []Input{{Path: loraPath, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{Arch: "sd1"})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	out := filepath.Join(tmp, "out.safetensors")
	if _, err := plan.Execute(context.Background(), out, Options{DType: "fp32"}); err != nil {
		t.Fatal(err)
	}
	lf, _ := safetensors.Open(loraPath)
	defer lf.Close()
	mf, _ := safetensors.Open(out)
	defer mf.Close()
	// unet.<diffusers module>.lora.up.weight → the base key via the SD1
	// block arithmetic written out here independently for attention modules
	checked := 0
	for _, ti := range lf.Tensors {
		prefix, ok := strings.CutSuffix(ti.Name, ".lora.up.weight")
		if !ok || !strings.Contains(prefix, "attn2.to_k") {
			continue
		}
		key := sd1AttentionKey(strings.TrimPrefix(prefix, "unet."))
		m := fixtureModule(prefix+".lora.up.weight", prefix+".lora.down.weight")
		d, _, _ := loraDelta(t, lf, m)
		got, _ := f64(t, mf, key+".weight")
		for i := range d {
			// the base is zero, so the output is the delta (fp32 output)
			if diff := got[i] - d[i]; diff > 1e-6 || diff < -1e-6 {
				t.Fatalf("%s[%d] = %g, want %g", key, i, got[i], d[i])
			}
		}
		checked++
	}
	if checked != 16 {
		t.Fatalf("checked %d attn2.to_k modules, want 16", checked)
	}
}

// sd1AttentionKey maps a diffusers SD1.5 attention module path to the LDM
// checkpoint key by the UNet's block arithmetic (down: input_blocks
// 3·b+1+a; mid: middle_block.1; up: output_blocks 3·b+a).
func sd1AttentionKey(d string) string {
	var b, a int
	var rest string
	switch {
	case strings.HasPrefix(d, "down_blocks."):
		fmt.Sscanf(d, "down_blocks.%d.attentions.%d.", &b, &a)
		rest = d[strings.Index(d, ".transformer_blocks"):]
		return fmt.Sprintf("model.diffusion_model.input_blocks.%d.1%s", 3*b+1+a, rest)
	case strings.HasPrefix(d, "up_blocks."):
		fmt.Sscanf(d, "up_blocks.%d.attentions.%d.", &b, &a)
		rest = d[strings.Index(d, ".transformer_blocks"):]
		return fmt.Sprintf("model.diffusion_model.output_blocks.%d.1%s", 3*b+a, rest)
	}
	rest = d[strings.Index(d, ".transformer_blocks"):]
	return "model.diffusion_model.middle_block.1" + rest
}

// TestMergeIntoComponentFiles: the real kohya SDXL LoRA listing maps onto
// the real diffusers-layout SDXL UNet file (unet/diffusion_pytorch_model)
// and onto standalone CLIP-L / CLIP-G text-encoder files; the parts a
// component file lacks are skipped, nothing is unmatched.
func TestMergeIntoComponentFiles(t *testing.T) {
	d := filepath.Join("..", "..", "shared", "corpus")
	if _, err := os.Stat(d); err != nil {
		t.Skip("../shared/corpus not available")
	}
	tmp := t.TempDir()
	sparse := func(listing, out string) {
		b, err := os.ReadFile(filepath.Join(d, listing))
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Keys   []string           `json:"keys"`
			Shapes map[string][]int64 `json:"shapes"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		var ps []arch.Param
		for _, k := range l.Keys {
			ps = append(ps, arch.Param{Name: k, Shape: l.Shapes[k]})
		}
		writeSparse(t, out, ps, dtype.F16)
	}
	lora := filepath.Join(tmp, "kohya-sdxl.safetensors")
	sparse("keys/kohya-sdxl-1.json", lora)
	for _, c := range []struct {
		listing, arch string
		patches       int // modules of the LoRA that land in this component
	}{
		{"checkpoint-keys/sdxl-unet-diffusers.json", "", 722},
		{"checkpoint-keys/sdxl-text_encoder-clip-l-hf.json", "sdxl", 72},
		{"checkpoint-keys/sdxl-text_encoder_2-clip-g-hf.json", "sdxl", 192},
	} {
		t.Run(filepath.Base(c.listing), func(t *testing.T) {
			base := filepath.Join(tmp, filepath.Base(c.listing)+".safetensors")
			sparse(c.listing, base)
			plan, err := NewPlan(base, []Input{{Path: lora, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{Arch: c.arch})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			if len(plan.Unmatched) > 0 {
				t.Fatalf("%d unmatched, e.g. %+v", len(plan.Unmatched), plan.Unmatched[0])
			}
			if len(plan.Patches) != c.patches {
				t.Errorf("%d patches, want %d (skipped %d)", len(plan.Patches), c.patches, len(plan.Skipped))
			}
		})
	}
}
