package workflow

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// comfyExample is the shape of ComfyUI's extra_model_paths.yaml.example
// (sections, base_path, is_default, "|" blocks, comments).
const comfyExample = `#Rename this to extra_model_paths.yaml and ComfyUI will load it


#config for a1111 ui
#all you have to do is change the base_path to where yours is installed
a111:
    base_path: /opt/webui/

    checkpoints: models/Stable-diffusion
    configs: models/Stable-diffusion
    vae: models/VAE
    loras: |
         models/Lora
         models/LyCORIS
    upscale_models: |
                  models/ESRGAN
                  models/RealESRGAN
                  models/SwinIR
    embeddings: embeddings
    hypernetworks: models/hypernetworks
    controlnet: models/ControlNet

#config for comfyui
comfyui:
     base_path: "/srv/comfy"   # quoted, with a comment
     is_default: true
     checkpoints: models/checkpoints/
     clip: models/clip/
     diffusion_models: |
                  models/diffusion_models
                  models/unet
     loras: 'models/loras/'

other:
     unet: relative/unet
     text_encoders:
       - /abs/te1
       - "/abs/te2"
`

func TestParseExtraModelPaths(t *testing.T) {
	got, err := ParseExtraModelPaths([]byte(comfyExample))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, strings.Join([]string{e.Section, e.Type, e.Base, e.Path, map[bool]string{true: "default"}[e.Default]}, "|"))
	}
	want := []string{
		"a111|checkpoints|/opt/webui/|models/Stable-diffusion|",
		"a111|configs|/opt/webui/|models/Stable-diffusion|",
		"a111|vae|/opt/webui/|models/VAE|",
		"a111|loras|/opt/webui/|models/Lora|",
		"a111|loras|/opt/webui/|models/LyCORIS|",
		"a111|upscale_models|/opt/webui/|models/ESRGAN|",
		"a111|upscale_models|/opt/webui/|models/RealESRGAN|",
		"a111|upscale_models|/opt/webui/|models/SwinIR|",
		"a111|embeddings|/opt/webui/|embeddings|",
		"a111|hypernetworks|/opt/webui/|models/hypernetworks|",
		"a111|controlnet|/opt/webui/|models/ControlNet|",
		"comfyui|checkpoints|/srv/comfy|models/checkpoints/|default",
		"comfyui|clip|/srv/comfy|models/clip/|default",
		"comfyui|diffusion_models|/srv/comfy|models/diffusion_models|default",
		"comfyui|diffusion_models|/srv/comfy|models/unet|default",
		"comfyui|loras|/srv/comfy|models/loras/|default",
		"other|unet||relative/unet|",
		"other|text_encoders||/abs/te1|",
		"other|text_encoders||/abs/te2|",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseExtraModelPathsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  loras: x\n", "line 1: indented entry before any section"},
		{"a:\n  loras: [x, y]\n", "line 2: \"loras\": flow collections"},
		{"a: b\n", "line 1: top-level key \"a\" should start a section"},
		{"a:\n  just text\n", "line 2: expected \"key: value\""},
	} {
		_, err := ParseExtraModelPaths([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestFoldersFromYAML(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, "conf", "extra_model_paths.yaml")
	mkdirFor(t, yaml)
	content := "mine:\n  base_path: " + filepath.Join(dir, "store") + "\n  loras: |\n    loras-a\n    loras-b\n  unet: unets\n" +
		"rel:\n  checkpoints: ckpts\n" +
		"first:\n  base_path: " + filepath.Join(dir, "fast") + "\n  is_default: true\n  loras: l\n"
	if err := os.WriteFile(yaml, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFolders()
	f.AddModelsDir(filepath.Join(dir, "models"))
	if err := f.LoadExtraModelPaths(yaml); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ  string
		want []string
	}{
		{TypeLoRAs, []string{filepath.Join(dir, "fast", "l"), filepath.Join(dir, "models", "loras"), filepath.Join(dir, "store", "loras-a"), filepath.Join(dir, "store", "loras-b")}},
		{TypeDiffusionModels, []string{filepath.Join(dir, "models", "unet"), filepath.Join(dir, "models", "diffusion_models"), filepath.Join(dir, "store", "unets")}},
		{TypeCheckpoints, []string{filepath.Join(dir, "models", "checkpoints"), filepath.Join(dir, "conf", "ckpts")}},
		{TypeTextEncoders, []string{filepath.Join(dir, "models", "text_encoders"), filepath.Join(dir, "models", "clip")}},
	}
	for _, tc := range tests {
		if got := f.Dirs(tc.typ); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.typ, got, tc.want)
		}
	}

	// resolution: first folder holding the file wins; '\' and '/' both
	// separate sub-folders
	touch(t, filepath.Join(dir, "store", "loras-b", "sub", "x.safetensors"))
	touch(t, filepath.Join(dir, "store", "loras-a", "sub", "y.safetensors"))
	touch(t, filepath.Join(dir, "models", "loras", "sub", "y.safetensors"))
	for _, tc := range []struct {
		name, want string
	}{
		{`sub\x.safetensors`, filepath.Join(dir, "store", "loras-b", "sub", "x.safetensors")},
		{`sub/x.safetensors`, filepath.Join(dir, "store", "loras-b", "sub", "x.safetensors")},
		{`sub\y.safetensors`, filepath.Join(dir, "models", "loras", "sub", "y.safetensors")},
		{`..\..\store\loras-b\sub\x.safetensors`, ""},
		{`sub\z.safetensors`, ""},
	} {
		got, searched, ok := f.Resolve(TypeLoRAs, tc.name)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Resolve(%q) = %q %v, want %q", tc.name, got, ok, tc.want)
		}
		if !ok && len(searched) != 4 {
			t.Errorf("Resolve(%q) searched %v", tc.name, searched)
		}
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`1.5\1.5-dpo-LoRA.safetensors`, "1.5/1.5-dpo-LoRA.safetensors"},
		{`Flux.1/AWPortrait-FL-lora.safetensors`, "Flux.1/AWPortrait-FL-lora.safetensors"},
		{`a\\b\.\c.safetensors`, "a/b/c.safetensors"},
		{`..\x.safetensors`, "x.safetensors"},
		{`/etc/x.safetensors`, "etc/x.safetensors"},
		{``, ""},
	} {
		if got := cleanName(tc.in); got != tc.want {
			t.Errorf("cleanName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestComfyName(t *testing.T) {
	dir := t.TempDir()
	f := NewFolders()
	f.AddModelsDir(filepath.Join(dir, "a"))
	f.AddModelsDir(filepath.Join(dir, "b"))
	for _, tc := range []struct {
		typ, path, want string
		under           bool
	}{
		{TypeCheckpoints, filepath.Join(dir, "a", "checkpoints", "x.safetensors"), "x.safetensors", true},
		{TypeCheckpoints, filepath.Join(dir, "b", "checkpoints", "sub", "x.safetensors"), filepath.Join("sub", "x.safetensors"), true},
		{TypeDiffusionModels, filepath.Join(dir, "b", "unet", "Flux", "x.safetensors"), filepath.Join("Flux", "x.safetensors"), true},
		{TypeDiffusionModels, filepath.Join(dir, "a", "checkpoints", "x.safetensors"), "x.safetensors", false},
		{TypeCheckpoints, filepath.Join(dir, "a", "checkpoints-old", "x.safetensors"), "x.safetensors", false},
	} {
		got, under := f.ComfyName(tc.typ, tc.path)
		if got != tc.want || under != tc.under {
			t.Errorf("ComfyName(%s, %s) = %q %v, want %q %v", tc.typ, tc.path, got, under, tc.want, tc.under)
		}
	}
}

// TestInspectExtraModelPaths resolves the SD1.5 example through an
// extra_model_paths.yaml only (a1111-style folder names).
func TestInspectExtraModelPaths(t *testing.T) {
	m := sd15Models(t, &sd1LoRASpec)
	yaml := filepath.Join(t.TempDir(), "extra_model_paths.yaml")
	content := "a111:\n    base_path: " + m + "\n    checkpoints: checkpoints\n    vae: vae\n    loras: |\n         Lora\n         loras\n"
	if err := os.WriteFile(yaml, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "inspect", sd15File, "--extra-model-paths", yaml, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	r := decodeReports(t, out)[0]
	if r.LoRAs[0].Path != inModels(m, "loras", sd15LoRA) || r.Errors != 0 {
		t.Errorf("report %+v", r)
	}
	code, _, errOut = run(t, "inspect", sd15File, "--extra-model-paths", filepath.Join(m, "nope.yaml"))
	if code != 1 || !strings.Contains(errOut, "nope.yaml: no such file or directory") {
		t.Errorf("exit %d %q", code, errOut)
	}
}
