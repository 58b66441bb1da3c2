package convert

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/safetensors"
)

func readF32(t *testing.T, f *safetensors.File, key string) ([]float32, []int64) {
	t.Helper()
	ti, ok := f.Lookup(key)
	if !ok {
		t.Fatalf("%s: no tensor %s", f.Path, key)
	}
	v, err := f.Float32(ti, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v, ti.Shape
}

// delta computes scale·up@down in float64.
func delta(up, down []float32, rows, r int, scale float64) []float64 {
	cols := len(down) / r
	d := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for k := 0; k < r; k++ {
			u := float64(up[i*r+k]) * scale
			for j := 0; j < cols; j++ {
				d[i*cols+j] += u * float64(down[k*cols+j])
			}
		}
	}
	return d
}

// TestPEFTOneAdapterPerModel: --to peft of a LoRA with text-encoder
// modules writes unet/ and text_encoder/ adapters (PEFT save_pretrained
// layout), each with base_model.model.<module> keys and its own config, and
// the deltas are the source's.
func TestPEFTOneAdapterPerModel(t *testing.T) {
	src := filepath.Join("..", "testdata", "demo", "sd15-lora-tiny.safetensors")
	out := filepath.Join(t.TempDir(), "pixel.safetensors")
	res, err := File(src, out, Options{To: "peft"})
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSuffix(out, ".safetensors")
	if res.Output != dir || len(res.Adapters) != 2 {
		t.Fatalf("output %q adapters %v", res.Output, res.Adapters)
	}
	if len(res.Notes) == 0 || !strings.Contains(res.Notes[len(res.Notes)-1], "one PEFT adapter per model") {
		t.Errorf("notes %v", res.Notes)
	}
	sf, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	for _, c := range []struct {
		folder, prefix, module, kohya string
		modules                       int
	}{
		{"unet", "base_model.model.down_blocks.", "base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 230},
		{"text_encoder", "base_model.model.text_model.", "base_model.model.text_model.encoder.layers.0.self_attn.q_proj", "lora_te_text_model_encoder_layers_0_self_attn_q_proj", 72},
	} {
		f, err := safetensors.Open(filepath.Join(dir, c.folder, "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := 0
		for _, ti := range f.Tensors {
			if !strings.HasPrefix(ti.Name, "base_model.model.") {
				t.Errorf("%s: key %s", c.folder, ti.Name)
			}
			if strings.HasSuffix(ti.Name, ".lora_A.weight") {
				n++
			}
		}
		if n != c.modules {
			t.Errorf("%s: %d modules, want %d", c.folder, n, c.modules)
		}
		var cfg struct {
			R       int      `json:"r"`
			Alpha   int      `json:"lora_alpha"`
			Targets []string `json:"target_modules"`
		}
		b, err := os.ReadFile(filepath.Join(dir, c.folder, "adapter_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		if len(cfg.Targets) != c.modules || strings.HasPrefix(cfg.Targets[0], "text_encoder.") || strings.HasPrefix(cfg.Targets[0], "base_model.") {
			t.Errorf("%s: %d targets, first %q", c.folder, len(cfg.Targets), cfg.Targets[0])
		}
		// ΔW = (lora_alpha/r)·B·A equals the kohya module's (alpha/r)·up·down
		B, bs := readF32(t, f, c.module+".lora_B.weight")
		A, _ := readF32(t, f, c.module+".lora_A.weight")
		got := delta(B, A, int(bs[0]), int(bs[1]), float64(cfg.Alpha)/float64(cfg.R))
		up, us := readF32(t, sf, c.kohya+".lora_up.weight")
		down, _ := readF32(t, sf, c.kohya+".lora_down.weight")
		scale := 1.0
		if al, ok := sf.Lookup(c.kohya + ".alpha"); ok {
			v, _ := sf.Float32(al, nil)
			scale = float64(v[0]) / float64(us[1])
		}
		want := delta(up, down, int(us[0]), int(us[1]), scale)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-3*math.Abs(want[i])+1e-6 {
				t.Fatalf("%s: ΔW[%d] = %g, source %g", c.folder, i, got[i], want[i])
			}
		}
	}
	// a diffusion-model-only LoRA stays one file
	res2, err := File(filepath.Join("..", "testdata", "golden", "comfyui", "flux1_peft_dora_raw.lora.safetensors"), filepath.Join(t.TempDir(), "adapter_model.safetensors"), Options{To: "peft"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Adapters) != 0 || !strings.HasSuffix(res2.Config, "adapter_config.json") {
		t.Errorf("flux: adapters %v config %q", res2.Adapters, res2.Config)
	}
}

// peftDirDeltas reads a folder of per-model PEFT adapters for fileDeltas:
// each adapter's base_model.model.X keys are copied, as <folder>.X (the
// model's diffusers name), into a file fileDeltas reads.
func peftDirDeltas(t *testing.T, a *arch.Arch, dir string, shapes map[string][2]int) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	n := 0
	for _, folder := range peftFolders {
		p := filepath.Join(dir, folder, "adapter_model.safetensors")
		f, err := safetensors.Open(p)
		if err != nil {
			continue
		}
		n++
		var specs []safetensors.TensorSpec
		names := map[string]safetensors.TensorInfo{}
		for _, ti := range f.Tensors {
			if !strings.HasPrefix(ti.Name, "base_model.model.") {
				t.Fatalf("%s: key %s", p, ti.Name)
			}
			name := folder + "." + strings.TrimPrefix(ti.Name, "base_model.model.")
			specs = append(specs, safetensors.TensorSpec{Name: name, DType: ti.DType, Shape: ti.Shape})
			names[name] = ti
		}
		cp := filepath.Join(t.TempDir(), folder+".safetensors")
		w, err := safetensors.Create(cp, specs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range w.Order() {
			if err := w.Write(s.Name, f.Bytes(names[s.Name])); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		for k, v := range fileDeltas(t, a, cp, shapes) {
			out[k] = v
		}
	}
	if n == 0 {
		t.Fatalf("%s: no per-model adapters", dir)
	}
	return out
}
