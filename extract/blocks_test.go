package extract

import (
	"context"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
)

// TestModuleBlocksAndPlotRegions: each extracted module reports its LoRA
// Block Weight block, and the plot colours it by that block's region — UNet
// attention in the middle and output blocks is not an input block.
func TestModuleBlocksAndPlotRegions(t *testing.T) {
	sig := []float64{2, 1}
	pr := makePair(t, "sd1", []change{
		{suffix: "attn1.to_q.weight", contains: []string{"input_blocks.4."}, signal: sig},
		{suffix: "attn1.to_q.weight", contains: []string{"middle_block."}, signal: sig},
		{suffix: "attn1.to_q.weight", contains: []string{"output_blocks.10."}, signal: sig},
		{suffix: "time_embed.0.weight", signal: sig},
	}, dtype.F32)
	rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: tmpPath(t, "l.safetensors"), Rank: 2, DType: "fp32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"input_blocks.4.":   {"IN04", arch.RegionIn},
		"middle_block.":     {"M00", arch.RegionMid},
		"output_blocks.10.": {"OUT10", arch.RegionOut},
		"time_embed.":       {"", arch.RegionOther},
	}
	seen := 0
	for _, m := range rep.Modules {
		for k, w := range want {
			if !strings.Contains(m.Key, k) {
				continue
			}
			seen++
			if m.Block != w[0] {
				t.Errorf("%s: block %q, want %q", m.Key, m.Block, w[0])
			}
			if g := plotGroups[plotGroup(m)].label; g != w[1] {
				t.Errorf("%s: plotted as %q, want %q", m.Key, g, w[1])
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d modules checked", seen, len(want))
	}
}
