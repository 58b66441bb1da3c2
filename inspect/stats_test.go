package inspect

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// TestStatsBlockNorms: --stats reports per block the Frobenius norm of the
// modules' weight deltas at strength 1; recomputed here in float64 from the
// file's factors (LoRA: scale·up@down; full: the diff itself).
func TestStatsBlockNorms(t *testing.T) {
	for _, algo := range []string{"lora", "full"} {
		t.Run(algo, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "l.safetensors")
			rank := 3
			if algo == "full" {
				rank = 0
			}
			mods, err := fixture.WriteLoRA(p, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Algo: algo, Rank: rank, Alpha: 1.5, DType: dtype.F32, Seed: 3, Parts: []arch.Part{arch.UNet}})
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			read := func(key string) ([]float64, []int64) {
				ti, _ := f.Lookup(key)
				v, err := f.Float32(ti, nil)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]float64, len(v))
				for i, x := range v {
					out[i] = float64(x)
				}
				return out, ti.Shape
			}
			want := map[string]float64{}
			for _, m := range mods {
				var n2 float64
				if algo == "full" {
					d, _ := read(m.Roles["diff"])
					for _, x := range d {
						n2 += x * x
					}
				} else {
					up, us := read(m.Roles["up"])
					down, ds := read(m.Roles["down"])
					r, rows := int(ds[0]), int(us[0])
					cols := len(down) / r
					scale := 1.5 / float64(r)
					for i := 0; i < rows; i++ {
						for j := 0; j < cols; j++ {
							var s float64
							for k := 0; k < r; k++ {
								s += up[i*r+k] * down[k*cols+j]
							}
							n2 += s * s * scale * scale
						}
					}
				}
				want[lbwBlockName(m.Target.Module)] += n2
			}
			r := File(p, Options{Stats: true})
			if r.Error != "" || r.Stats == nil {
				t.Fatalf("no stats: %s", r.Error)
			}
			seen := 0
			for _, b := range r.Stats.Blocks {
				w, ok := want[b.Block]
				if !ok {
					continue
				}
				seen++
				if math.Abs(b.Norm-math.Sqrt(w)) > 1e-5*math.Sqrt(w) {
					t.Errorf("%s: norm %g, want %g", b.Block, b.Norm, math.Sqrt(w))
				}
			}
			if seen != len(want) {
				t.Errorf("%d of %d blocks reported", seen, len(want))
			}
		})
	}
}

var reLDMBlock = regexp.MustCompile(`^(input_blocks|middle_block|output_blocks)\.(\d+)\.`)

// lbwBlockName is sd-webui-lora-block-weight's block of an LDM UNet module
// (input_blocks.N → INnn, middle_block → M00, output_blocks.N → OUTnn);
// other modules are reported by component and native block.
func lbwBlockName(module string) string {
	m := reLDMBlock.FindStringSubmatch(module)
	if m == nil {
		return "diffusion_model:" + blockOf(module)
	}
	n, _ := strconv.Atoi(m[2])
	switch m[1] {
	case "input_blocks":
		return fmt.Sprintf("IN%02d", n)
	case "output_blocks":
		return fmt.Sprintf("OUT%02d", n)
	}
	return "M00"
}
