package inspect

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

// TestStatsBlockNames: --stats names a LoRA's blocks as merge's lbw= does
// and lists them in the architecture's block order.
func TestStatsBlockNames(t *testing.T) {
	for _, tc := range []struct {
		arch  string
		parts []arch.Part
		want  string // the first block names, in order
	}{
		{"sd1", nil, "BASE,IN01,IN02,IN04,IN05,IN07,IN08,M00,OUT03"},
		{"sdxl", nil, "BASE,IN04,IN05,IN07,IN08,M00,OUT00,OUT01,OUT02,OUT03,OUT04,OUT05"},
		{"flux1", []arch.Part{arch.DiT}, "IN,D00,D01,D02"},
	} {
		p := filepath.Join(t.TempDir(), "l.safetensors")
		if _, err := fixture.WriteLoRA(p, fixture.LoRASpec{Arch: tc.arch, Size: arch.Tiny, Rank: 2, Alpha: 1, DType: dtype.F32, Seed: 1, Parts: tc.parts,
			Filter: func(m string) bool {
				return strings.Contains(m, "attn") || strings.Contains(m, "proj") || strings.Contains(m, "_in")
			}}); err != nil {
			t.Fatal(err)
		}
		r := File(p, Options{Stats: true})
		if r.Stats == nil {
			t.Fatalf("%s: no stats: %s", tc.arch, r.Error)
		}
		var names []string
		for _, b := range r.Stats.Blocks {
			names = append(names, b.Block)
		}
		got := strings.Join(names, ",")
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: blocks %s, want them to start %s", tc.arch, got, tc.want)
		}
	}
}
