package workflow

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/merge"
)

// TestBakeFollowsComfyUI: bake skips what ComfyUI's LoraLoader ignores
// (here an (IA)³ module of a ComfyUI golden case) and says so; --apply-all
// applies it, as `loratool merge` does by default.
func TestBakeFollowsComfyUI(t *testing.T) {
	golden := filepath.Join("..", "testdata", "golden", "comfyui", "sd1_lycoris_algos.lora.safetensors")
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	const ia3 = "model.diffusion_model.input_blocks.7.1.transformer_blocks.0.attn1.to_q.weight"
	for _, tc := range []struct {
		name  string
		args  []string
		opt   merge.PlanOptions
		warn  string
		isIA3 bool // the (IA)³ target changes
	}{
		{"default", nil, merge.PlanOptions{ComfyExact: true}, "ComfyUI's LoraLoader ignores these 2 keys; skipped, as ComfyUI does", false},
		{"apply-all", []string{"--apply-all"}, merge.PlanOptions{}, "ComfyUI's LoraLoader ignores these 2 keys; loratool applies them", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sd15Models(t, nil)
			lp := inModels(m, "loras", sd15LoRA)
			mkdirFor(t, lp)
			if err := os.WriteFile(lp, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(m, "checkpoints", "baked.safetensors")
			code, _, errOut := run(t, append([]string{"bake", sd15File, "-m", m, "-o", out}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(errOut, tc.warn) || !strings.Contains(errOut, "(IA)³ is not a ComfyUI adapter") {
				t.Errorf("stderr lacks %q: %s", tc.warn, errOut)
			}
			base := inModels(m, "checkpoints", sd15Ckpt)
			ref := mergeDirect(t, base, []merge.Input{{Path: lp, StrengthModel: 1, StrengthClip: 1}}, tc.opt)
			if d := tensorDiff(t, out, ref); len(d) != 0 {
				t.Errorf("%d tensors differ from the direct merge, e.g. %s", len(d), d[0])
			}
			changed := tensorDiff(t, out, base)
			got := false
			for _, c := range changed {
				got = got || c == ia3
			}
			if got != tc.isIA3 || len(changed) < 10 {
				t.Errorf("(IA)³ target changed: %v, want %v (%d tensors changed)", got, tc.isIA3, len(changed))
			}
		})
	}
}
