package arch

import (
	"strings"
	"testing"
)

func TestBlockOf(t *testing.T) {
	for _, tc := range []struct {
		arch, component, module, block, region string
	}{
		{"sd1", DiffusionModel, "input_blocks.1.1.transformer_blocks.0.attn1.to_q", "IN01", RegionIn},
		{"sd1", DiffusionModel, "input_blocks.11.0.in_layers.2", "IN11", RegionIn},
		{"sd1", DiffusionModel, "input_blocks.0.0", "IN00", RegionIn},
		// UNet attention in the middle and output blocks is not an input block
		{"sd1", DiffusionModel, "middle_block.1.transformer_blocks.0.attn2.to_k", "M00", RegionMid},
		{"sd1", DiffusionModel, "output_blocks.5.1.transformer_blocks.0.ff.net.2", "OUT05", RegionOut},
		{"sd1", DiffusionModel, "output_blocks.11.1.proj_out", "OUT11", RegionOut},
		{"sd1", DiffusionModel, "time_embed.0", "", RegionOther},
		{"sd1", DiffusionModel, "out.2", "", RegionOther},
		{"sd1", "clip_l", "text_model.encoder.layers.3.mlp.fc1", "BASE", RegionTextEncoder},
		{"sdxl", DiffusionModel, "input_blocks.8.1.transformer_blocks.9.attn1.to_v", "IN08", RegionIn},
		{"sdxl", DiffusionModel, "output_blocks.0.1.proj_in", "OUT00", RegionOut},
		{"sdxl", DiffusionModel, "label_emb.0.0", "", RegionOther},
		{"sdxl", "clip_g", "text_model.encoder.layers.30.self_attn.q_proj", "BASE", RegionTextEncoder},
		{"flux1", DiffusionModel, "double_blocks.7.img_attn.qkv", "D07", RegionIn},
		{"flux1", DiffusionModel, "single_blocks.37.linear1", "S37", RegionMid},
		{"flux1", DiffusionModel, "img_in", "IN", RegionOther},
		{"flux1", DiffusionModel, "guidance_in.in_layer", "IN", RegionOther},
		{"flux1", DiffusionModel, "final_layer.linear", "OUT", RegionOther},
		{"flux1", "clip_l", "text_model.encoder.layers.0.mlp.fc1", "CLIP", RegionTextEncoder},
		{"flux1", "t5xxl", "encoder.block.0.layer.0.SelfAttention.q", "T5", RegionTextEncoder},
		{"sd3", DiffusionModel, "joint_blocks.23.x_block.attn.qkv", "J23", RegionIn},
		{"sd3", DiffusionModel, "context_embedder", "IN", RegionOther},
		{"wan", DiffusionModel, "blocks.12.self_attn.q", "L12", RegionIn},
		{"wan", DiffusionModel, "head.head", "OUT", RegionOther},
		{"qwen-image", DiffusionModel, "proj_out", "OUT", RegionOther},
		{"lumina2", DiffusionModel, "noise_refiner.0.attention.qkv", "IN", RegionOther},
		{"auraflow", DiffusionModel, "final_linear", "OUT", RegionOther},
	} {
		a, ok := ByID(tc.arch)
		if !ok {
			t.Fatalf("no arch %s", tc.arch)
		}
		tg := Target{Arch: a, Component: tc.component, Module: tc.module}
		if got := a.Blocks().BlockOf(tg); got != tc.block {
			t.Errorf("%s %s %s: block %q, want %q", tc.arch, tc.component, tc.module, got, tc.block)
		}
		if got := RegionOf(tg); got != tc.region {
			t.Errorf("%s %s: region %q, want %q", tc.arch, tc.module, got, tc.region)
		}
	}
}

func TestBlockForms(t *testing.T) {
	for _, tc := range []struct {
		arch   string
		counts []int
		first  string // the first form's blocks, described
	}{
		{"sd1", []int{17, 26}, "BASE,IN01,IN02,IN04,IN05,IN07,IN08,M00,OUT03–OUT11"},
		{"sd2", []int{17, 26}, "BASE,IN01,IN02,IN04,IN05,IN07,IN08,M00,OUT03–OUT11"},
		{"sdxl", []int{12, 20}, "BASE,IN04,IN05,IN07,IN08,M00,OUT00–OUT05"},
		{"flux1", []int{61, 58}, "CLIP,T5,IN,D00–D18,S00–S37,OUT"},
		{"chroma", []int{60}, "BASE,IN,D00–D18,S00–S37,OUT"},
		{"wan", []int{43}, "BASE,IN,L00–L39,OUT"},
	} {
		a, _ := ByID(tc.arch)
		bt := a.Blocks()
		var got []int
		for _, f := range bt.Forms {
			got = append(got, len(f.Slots))
		}
		if len(got) != len(tc.counts) {
			t.Errorf("%s: forms %v, want %v", tc.arch, got, tc.counts)
			continue
		}
		for i := range got {
			if got[i] != tc.counts[i] {
				t.Errorf("%s: forms %v, want %v", tc.arch, got, tc.counts)
			}
		}
		if d := DescribeBlocks(bt.Forms[0].Names()); d != tc.first {
			t.Errorf("%s: first form %s, want %s", tc.arch, d, tc.first)
		}
	}
	// Inspire's 58: BASE covers the text encoders and the modules outside
	// the double and single blocks
	a, _ := ByID("flux1")
	f := a.Blocks().Forms[1]
	if strings.Join(f.Slots[0], "+") != "CLIP+T5+IN+OUT" || f.Slots[1][0] != "D00" || f.Slots[57][0] != "S37" {
		t.Errorf("flux1 58-value form: %v ... %v", f.Slots[0], f.Slots[57])
	}
}

// TestEveryModuleHasABlock: every diffusion-model weight of every
// registered architecture lands in a block of its table (or, for UNets,
// outside every block only for the time/label embeddings and the output
// layer), and every block of the table holds a module.
func TestEveryModuleHasABlock(t *testing.T) {
	for _, a := range All() {
		bt := a.Blocks()
		used := map[string]bool{}
		for _, p := range a.Params(Tiny) {
			mod, _, _ := ModuleOf(p.Name)
			b := bt.BlockOf(Target{Arch: a, Component: DiffusionModel, Module: mod})
			if b == "" {
				if a.Part == UNet && (strings.HasPrefix(mod, "time_embed.") || strings.HasPrefix(mod, "label_emb.") || strings.HasPrefix(mod, "out.")) {
					continue
				}
				t.Errorf("%s: %s is in no block", a.ID, mod)
				continue
			}
			if bt.Index(b) < 0 {
				t.Errorf("%s: %s is in block %s, which the table lacks", a.ID, mod, b)
			}
			used[b] = true
		}
		for _, e := range a.Encoders {
			used[bt.BlockOf(Target{Arch: a, Component: e.Comfy})] = true
		}
		for _, b := range bt.Blocks {
			if !used[b.Name] {
				t.Errorf("%s: block %s holds no module", a.ID, b.Name)
			}
		}
	}
}

func TestBlockMatch(t *testing.T) {
	a, _ := ByID("sd1")
	for _, tc := range []struct{ pattern, want string }{
		{"IN04", "IN04"},
		{"mid", "M00"},
		{"M00", "M00"},
		{"OUT1?", "OUT10,OUT11"},
		{"in0[0-2]", "IN00,IN01,IN02"},
		{"BASE", "BASE"},
		{"D00", ""},
	} {
		got, err := a.Blocks().Match(tc.pattern)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("Match(%q) = %v, %v; want %s", tc.pattern, got, err, tc.want)
		}
	}
	f, _ := ByID("flux1")
	if got, _ := f.Blocks().Match("BASE"); strings.Join(got, ",") != "CLIP,T5" {
		t.Errorf("flux1 BASE = %v, want CLIP,T5", got)
	}
	if _, err := f.Blocks().Match("[x"); err == nil {
		t.Error("bad glob accepted")
	}
}
