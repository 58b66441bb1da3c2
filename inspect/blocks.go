package inspect

import (
	"sort"

	"github.com/loratool/loratool/lora"
)

// moduleBlock names the block a LoRA module's norm is reported under: its
// LoRA Block Weight block (IN04, M00, OUT11, D07, S12, BASE, ... — the
// names merge's lbw= takes) when its architecture's table places it,
// otherwise the component and native block path (e.g.
// "diffusion_model:time_embed.0"); unresolved modules by their prefix.
func moduleBlock(m *lora.Module) string {
	if m.Target == nil {
		return blockOf(m.Prefix)
	}
	if a := m.Target.Arch; a != nil {
		if b := a.Blocks().BlockOf(*m.Target); b != "" {
			return b
		}
	}
	return m.Target.Component + ":" + blockOf(m.Target.Module)
}

// sortBlocks orders a LoRA's blocks as its architecture's block table
// does (BASE, IN00 … OUT11; CLIP, T5, IN, D00 … S37, OUT), then the other
// names naturally.
func sortBlocks(bs []BlockStats, fit lora.Fit) {
	idx := func(name string) int {
		if fit.Arch == nil {
			return -1
		}
		return fit.Arch.Blocks().Index(name)
	}
	sort.SliceStable(bs, func(i, j int) bool {
		a, b := idx(bs[i].Block), idx(bs[j].Block)
		switch {
		case a >= 0 && b >= 0:
			return a < b
		case a >= 0 || b >= 0:
			return a >= 0
		}
		return naturalLess(bs[i].Block, bs[j].Block)
	})
}
