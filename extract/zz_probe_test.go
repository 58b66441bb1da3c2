package extract

import (
	"fmt"
	"testing"

	"github.com/loratool/loratool/arch"
)

func TestProbe(t *testing.T) {
	for _, id := range []string{"sd1", "sdxl", "flux1", "sd3"} {
		a, _ := arch.ByID(id)
		ps := arch.CheckpointParams(a, arch.Tiny)
		mv := arch.MapView{}
		for _, p := range ps {
			mv[p.Name] = p.Shape
		}
		info := arch.DetectCheckpoint(mv)
		fmt.Println(id, len(ps), info.Arch != nil, info.Layout, info.DiffusionPrefix, info.Parts, arch.NumParams(ps), arch.NumParams(arch.CheckpointParams(a, arch.Full)))
		n := 0
		for _, p := range ps {
			ts, ok := a.KeyTargets(p.Name, info, p.Shape)
			if !ok || len(p.Shape) < 2 {
				continue
			}
			for _, tg := range ts {
				k, err := a.LoRAPrefix(tg, "kohya")
				d, err2 := a.LoRAPrefix(tg, "diffusers")
				if n%25 == 0 || len(ts) > 1 || err != nil {
					fmt.Println("  ", p.Name, p.Shape, p.DType, tg.Component, tg.Module, tg.Slice, k, err, d, err2)
				}
				n++
			}
		}
		fmt.Println(" 2-D targets", n)
	}
}
