package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestComfyIgnoresMatchGolden: on the ComfyUI golden cases
// (testdata/golden/comfyui), the keys inspect says ComfyUI ignores are
// exactly ComfyUI's "lora key not loaded" keys that loratool resolves
// (merge with the model's text encoders and at non-zero strengths).
func TestComfyIgnoresMatchGolden(t *testing.T) {
	dir := filepath.Join("..", "testdata", "golden", "comfyui")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			Name      string   `json:"name"`
			ModelOnly bool     `json:"model_only"`
			NotLoaded []string `json:"comfy_not_loaded"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Cases {
		r := File(filepath.Join(dir, c.Name+".lora.safetensors"), Options{})
		if r.Error != "" {
			t.Fatalf("%s: %s", c.Name, r.Error)
		}
		var want []string
		unknown := map[string]bool{}
		for _, k := range r.UnknownKeys {
			unknown[k] = true // loratool does not load them either
		}
		nl := map[string]bool{}
		for _, k := range c.NotLoaded {
			nl[k] = true
		}
		for _, k := range c.NotLoaded {
			// text-encoder keys of model-only cases, and PEFT magnitudes of
			// modules ComfyUI loads, are ignored by loratool too
			mag := strings.HasSuffix(k, ".lora_magnitude_vector") && !nl[strings.TrimSuffix(k, ".lora_magnitude_vector")+".lora_A.weight"]
			if c.ModelOnly && strings.HasPrefix(k, "lora_te") || mag || unknown[k] {
				continue
			}
			want = append(want, k)
		}
		sort.Strings(want)
		got := r.ComfyIgnores
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: comfyui_ignores = %v, ComfyUI did not load %v", c.Name, got, want)
		}
	}
}

// TestComfyIgnoresCorpus: on real files, every tensor of the formats
// ComfyUI's key map lacks is named, and none of the formats it loads.
func TestComfyIgnoresCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "corpus", "files")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("corpus absent")
	}
	for name, all := range map[string]bool{
		"cloneofsimo-sd15-r4_analog_svd_rank4.safetensors":             true,
		"diffusers-loradot-sd15-r4_timohavdk.safetensors":              true,
		"nonstandard-lora_unet_unet-sd15-r4_timohavdk_new.safetensors": true,
		"diffusers-attnproc-sd15-r4_pokemon-diffusers.safetensors":     false,
		"diffusers-flux-partial-r16_leighwoods.safetensors":            false,
		"lycoris-lokr-sd15-r4_smart_falcon_4_lokr.safetensors":         false,
	} {
		r := File(filepath.Join(dir, name), Options{})
		if r.Error != "" {
			t.Fatalf("%s: %s", name, r.Error)
		}
		want := 0
		if all {
			want = r.Tensors
		}
		if len(r.ComfyIgnores) != want {
			t.Errorf("%s: %d of %d tensors named as ignored by ComfyUI, want %d", name, len(r.ComfyIgnores), r.Tensors, want)
		}
	}
}
