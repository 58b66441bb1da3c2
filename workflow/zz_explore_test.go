package workflow

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/inspect"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/merge"
)

func TestZZExplore(t *testing.T) {
	d := t.TempDir()
	t0 := time.Now()
	ck := filepath.Join(d, "sd1.safetensors")
	if _, err := fixture.WriteCheckpoint(ck, fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	fx := filepath.Join(d, "flux.safetensors")
	if _, err := fixture.WriteCheckpoint(fx, fixture.CheckpointSpec{Arch: "flux1", Size: arch.Tiny, Seed: 1, DType: dtype.F8E4M3, Layout: fixture.LayoutDiffusionModel}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ckpts", time.Since(t0))
	for _, s := range []fixture.LoRASpec{
		{Arch: "sd1", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 2},
		{Arch: "sdxl", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 2},
		{Arch: "flux1", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 2, Parts: []arch.Part{arch.DiT}},
		{Arch: "flux1", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 2},
	} {
		p := filepath.Join(d, s.Arch+fmt.Sprint(len(s.Parts))+".safetensors")
		if _, err := fixture.WriteLoRA(p, s); err != nil {
			t.Fatal(err)
		}
		r := inspect.File(p, inspect.Options{})
		fmt.Println(p, r.Kind, r.Architecture, r.Targets, r.TriggerWords, r.Warnings, len(r.UnknownKeys), r.Error)
		for _, b := range []string{ck, fx} {
			for _, mo := range []bool{false, true} {
				pl, err := merge.NewPlan(b, []merge.Input{{Path: p, StrengthModel: 1, StrengthClip: 1}}, merge.PlanOptions{ModelOnly: mo})
				if err != nil {
					fmt.Println("  plan err", filepath.Base(b), mo, err)
					continue
				}
				fmt.Println("  plan", filepath.Base(b), mo, pl.Arch.ID, len(pl.Patches), len(pl.Unmatched), len(pl.Skipped), pl.Warnings, pl.LoRAArch)
				if len(pl.Unmatched) > 0 {
					fmt.Println("   ", pl.Unmatched[0])
				}
				if len(pl.Skipped) > 0 {
					fmt.Println("   ", pl.Skipped[0])
				}
				pl.Close()
			}
		}
	}
	for _, b := range []string{ck, fx} {
		r := inspect.File(b, inspect.Options{})
		fmt.Println(b, r.Kind, r.Architecture, r.Layout, r.Targets, r.DTypes, r.Error)
	}
	pl, _ := merge.NewPlan(fx, []merge.Input{{Path: filepath.Join(d, "flux11.safetensors"), StrengthModel: 0.8}}, merge.PlanOptions{ModelOnly: true})
	t0 = time.Now()
	rep, err := pl.Execute(context.Background(), filepath.Join(d, "o.safetensors"), merge.Options{})
	fmt.Println(rep.PatchedTensors, err, time.Since(t0))
}
