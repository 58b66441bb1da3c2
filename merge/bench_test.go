package merge

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

// BenchmarkMergeSD1 merges a rank-16 kohya LoRA into an SD1.5 checkpoint
// holding the full-size attention and feed-forward weights the LoRA
// patches (fp16): the per-tensor pipeline (decode, apply, encode, measure)
// without the 2 GB of pass-through tensors (bench/merge.sh runs the whole
// file).
func BenchmarkMergeSD1(b *testing.B) {
	dir := b.TempDir()
	a, _ := arch.ByID("sd1")
	var ps []arch.Param
	for _, p := range a.Params(arch.Full) {
		if len(p.Shape) == 2 {
			ps = append(ps, arch.Param{Name: "model.diffusion_model." + p.Name, Shape: p.Shape})
		}
	}
	base := filepath.Join(dir, "base.safetensors")
	writeSparse(b, base, ps, dtype.F16)
	lora := filepath.Join(dir, "lora.safetensors")
	if _, err := fixture.WriteLoRA(lora, fixture.LoRASpec{Arch: "sd1", Size: arch.Full, Format: "kohya", Rank: 16, Alpha: 8, Seed: 1, Parts: []arch.Part{arch.UNet},
		Filter: func(m string) bool { return true }}); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plan, err := NewPlan(base, []Input{{Path: lora, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{Arch: "sd1", ModelOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		plan.Unmatched = nil
		if _, err := plan.Execute(context.Background(), out, Options{Overwrite: true}); err != nil {
			b.Fatal(err)
		}
		plan.Close()
	}
}
