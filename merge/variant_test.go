package merge

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

// variantFiles writes, as sparse files (headers only matter for the
// plan), the bare diffusion model of one variant and a rank-4 LoRA over
// every 2-D weight of another.
func variantFiles(t *testing.T, id, base, lora string) (string, string) {
	t.Helper()
	a, ok := arch.ByID(id)
	if !ok {
		t.Fatal(id)
	}
	params := func(name string) []arch.Param {
		i, ok := a.VariantIndex(name)
		if !ok {
			t.Fatalf("%s has no variant %q", id, name)
		}
		return a.Variants()[i].Params()
	}
	dir := t.TempDir()
	bp, lp := filepath.Join(dir, "base.safetensors"), filepath.Join(dir, "lora.safetensors")
	if err := fixture.WriteSparse(bp, params(base), dtype.BF16, nil); err != nil {
		t.Fatal(err)
	}
	var lps []arch.Param
	for _, p := range params(lora) {
		mod, ok := strings.CutSuffix(p.Name, ".weight")
		if !ok || len(p.Shape) != 2 {
			continue
		}
		lps = append(lps, arch.Param{Name: "diffusion_model." + mod + ".lora_A.weight", Shape: []int64{4, p.Shape[1]}},
			arch.Param{Name: "diffusion_model." + mod + ".lora_B.weight", Shape: []int64{p.Shape[0], 4}})
	}
	if err := fixture.WriteSparse(lp, lps, dtype.BF16, nil); err != nil {
		t.Fatal(err)
	}
	return bp, lp
}

func TestMergeVariantRefusal(t *testing.T) {
	for _, tc := range []struct {
		id, base, lora string
		refuse         bool
	}{
		{"sd3", "SD3 Medium", "SD3.5 Large", true},
		{"sd3", "SD3.5 Large", "SD3 Medium", true},
		{"wan", "Wan 2.1 T2V 14B", "Wan 2.1 T2V 1.3B", true},
		{"wan", "Wan 2.1 T2V 1.3B", "Wan 2.1 T2V 14B", true},
		{"flux2", "FLUX.2 dev", "FLUX.2 klein 4B", true},
		// same variant, or one whose modules are a subset of the base's
		{"sd3", "SD3.5 Large", "SD3.5 Large", false},
		{"wan", "Wan 2.1 I2V 14B", "Wan 2.1 T2V 14B", false},
		{"flux1", "FLUX.1 dev", "FLUX.1 schnell", false},
		// an I2V LoRA on T2V: only its k_img/v_img modules have no target
		// (reported per key), most modules fit
		{"wan", "Wan 2.1 T2V 14B", "Wan 2.1 I2V 14B", false},
		// a Canny/Depth LoRA differs from dev only in img_in
		{"flux1", "FLUX.1 dev", "FLUX.1 Canny/Depth", false},
	} {
		bp, lp := variantFiles(t, tc.id, tc.base, tc.lora)
		p, err := NewPlan(bp, []Input{{Path: lp, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
		if p != nil {
			p.Close()
		}
		name := tc.id + " " + tc.lora + " on " + tc.base
		if !tc.refuse {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: not refused", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.base) || !strings.Contains(msg, tc.lora) || !strings.HasPrefix(msg, lp+": ") {
			t.Errorf("%s: refusal %q must be one line naming the file and both variants", name, msg)
		}
	}
}
