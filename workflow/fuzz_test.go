package workflow

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzWorkflow checks that no input makes the package panic and that a
// successful Bake always produces a valid workflow.
func FuzzWorkflow(f *testing.F) {
	for _, p := range []string{sd15File, fluxFile, sd15API} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
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
