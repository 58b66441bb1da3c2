package workflow

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestZZDocs(t *testing.T) {
	root := "/tmp/wfdocs"
	os.RemoveAll(root)
	os.MkdirAll(root, 0o755)
	for _, f := range []string{sd15File, fluxFile} {
		os.WriteFile(filepath.Join(root, filepath.Base(f)), readFile(t, f), 0o644)
	}
	m := sd15Models(t, &sd1LoRASpec)
	f := fluxModels(t, fluxLoRASpec)
	os.Rename(m, filepath.Join(root, "models"))
	filepath.Walk(f, func(p string, info os.FileInfo, err error) error {
		if info.Mode().IsRegular() {
			rel, _ := filepath.Rel(f, p)
			dst := filepath.Join(root, "models", rel)
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.Rename(p, dst)
		}
		return nil
	})
	t.Chdir(root)
	show := func(args ...string) {
		code, out, errOut := run(t, args...)
		fmt.Printf("$ loratool workflow %v\n%s%s[exit %d]\n\n", args, out, errOut, code)
	}
	show("inspect", "sd15-pixel-art-lora.json")
	show("inspect", "sd15-pixel-art-lora.json", "--models-dir", "models")
	show("inspect", "flux1-dev-fp8-lora-model-only.json", "--models-dir", "models")
	show("inspect", "flux1-dev-fp8-lora-model-only.json", "--models-dir", "models", "--json")
	os.WriteFile("pix.json", edit(t, readFile(t, "sd15-pixel-art-lora.json"), setWidget0(6, "a single red rose in a vase")), 0o644)
	show("inspect", "pix.json", "--models-dir", "models")
	writeLoRA(t, "models/loras/sdxl-style.safetensors", sdxlLoRASpec)
	os.WriteFile("mix.json", edit(t, readFile(t, "sd15-pixel-art-lora.json"), func(doc map[string]any) {
		nodeByID(doc, 11)["widgets_values"].([]any)[0] = "sdxl-style.safetensors"
		nodeByID(doc, 10)["widgets_values"].([]any)[0] = "vae-ft-mse-840000-ema-pruned-v2.safetensors"
	}), 0o644)
	show("inspect", "mix.json", "--models-dir", "models")
	show("bake", "sd15-pixel-art-lora.json", "--models-dir", "models", "-o", "models/checkpoints/sd15-pixel.safetensors", "--write-workflow", "sd15-baked.json")
	show("bake", "mix.json", "--models-dir", "models", "-o", "x.safetensors")
	show("bake", "flux1-dev-fp8-lora-model-only.json", "-m", "models", "-o", "models/diffusion_models/Flux/flux1-dev-fp8-awportrait.safetensors", "--write-workflow", "flux-baked.json")
	show("inspect", "sd15-baked.json", "--models-dir", "models")
}
