package workflow

import (
	"path/filepath"
	"testing"
)

// FuzzWorkflow checks that no input makes the package panic and that a
// successful Bake always produces a valid workflow.
func FuzzWorkflow(f *testing.F) {
	// small seeds: the mutator and minimizer stall on the 20-40 KB examples
	for _, seed := range []string{
		`{"1":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"m.safetensors"}},"2":{"class_type":"LoraLoader","inputs":{"model":["1",0],"clip":["1",1],"lora_name":"a.safetensors","strength_model":"0.8","strength_clip":1}},"3":{"class_type":"KSampler","inputs":{"model":["2",0]}}}`,
		`{"1":{"class_type":"UNETLoader","inputs":{"unet_name":"f.safetensors"}},"2":{"class_type":"LoraLoaderModelOnly","inputs":{"model":["1",0],"lora_name":"","strength_model":1e308}}}`,
		`{"nodes":[{"id":1,"type":"CheckpointLoaderSimple","outputs":[{"name":"MODEL","type":"MODEL","links":[1]}],"widgets_values":["m.safetensors"]},{"id":2,"type":"LoraLoaderModelOnly","inputs":[{"name":"model","type":"MODEL","link":1}],"outputs":[{"name":"MODEL","type":"MODEL","links":[2]}],"widgets_values":["a.safetensors","0.5"]},{"id":3,"type":"KSampler","inputs":[{"name":"model","type":"MODEL","link":2}]}],"links":[[1,1,0,2,0,"MODEL"],[2,2,0,3,0,"MODEL"]]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Add([]byte(`{"nodes":[{"id":1,"type":"Reroute","inputs":[{"name":"","link":1}],"outputs":[{"links":[1]}]}],"links":[[1,1,0,1,0,"*"]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse(data, "f.json")
		_ = Validate(data)
		if err != nil {
			return
		}
		stacks, err := w.Stacks()
		if err != nil {
			return
		}
		for _, st := range stacks {
			out := filepath.Join(t.TempDir(), "out.json")
			if w.Bake(st, "new.safetensors", out) == nil {
				if err := Validate(readFile(t, out)); err != nil {
					t.Fatalf("baked output invalid: %v", err)
				}
			}
		}
	})
}
