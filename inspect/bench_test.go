package inspect

import (
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/internal/fixture"
)

// BenchmarkInspectLoRA inspects a full-size SD1.5 kohya LoRA (264 modules,
// rank 16): headers only, and with the alpha values read.
func BenchmarkInspectLoRA(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "lora.safetensors")
	if _, err := fixture.WriteLoRA(p, fixture.LoRASpec{Arch: "sd1", Size: arch.Full, Format: "kohya", Rank: 16, Alpha: 8, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	File(p, Options{}) // build the registry indexes once
	for _, bc := range []struct {
		name string
		opt  Options
	}{{"headers-only", Options{}}, {"with-alphas", Options{Alphas: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r := File(p, bc.opt); r.Error != "" || r.Architecture != "sd1" {
					b.Fatal(r.Error, r.Architecture)
				}
			}
		})
	}
}
