package merge

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// TestLoRAMergeKeepsReducedWidths: merging reduced-size LoRAs keeps each
// module's own rows (no zero-padding to the architecture's full width).
func TestLoRAMergeKeepsReducedWidths(t *testing.T) {
	const in = "../testdata/demo/sd15-lora-tiny.safetensors"
	out := filepath.Join(t.TempDir(), "two.safetensors")
	if _, err := MergeLoRAs([]Input{{Path: in, StrengthModel: 1, StrengthClip: 1}, {Path: in, StrengthModel: 0.5, StrengthClip: 0.5}}, out, LoRAMergeOptions{}); err != nil {
		t.Fatal(err)
	}
	src, err := safetensors.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	n := 0
	for _, ti := range dst.Tensors {
		if !strings.HasSuffix(ti.Name, ".lora_up.weight") {
			continue
		}
		si, ok := src.Lookup(ti.Name)
		if !ok {
			continue
		}
		n++
		if ti.Shape[0] != si.Shape[0] {
			t.Errorf("%s: %d rows, the input has %d", ti.Name, ti.Shape[0], si.Shape[0])
		}
		down, _ := dst.Lookup(strings.TrimSuffix(ti.Name, ".lora_up.weight") + ".lora_down.weight")
		if ti.Shape[1] != down.Shape[0] {
			t.Errorf("%s %v does not multiply down %v", ti.Name, ti.Shape, down.Shape)
		}
	}
	if n == 0 {
		t.Fatal("no modules compared")
	}
}

// TestCheckNotInput: -o equal to any input, by name, link or another
// spelling, is refused.
func TestCheckNotInput(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.safetensors")
	os.WriteFile(a, []byte("x"), 0o644)
	os.Symlink(a, filepath.Join(dir, "link.safetensors"))
	os.Link(a, filepath.Join(dir, "hard.safetensors"))
	for _, out := range []string{a, filepath.Join(dir, "link.safetensors"), filepath.Join(dir, "hard.safetensors"), dir + "/./a.safetensors"} {
		if err := checkNotInput(out, "other.safetensors", a); err == nil {
			t.Errorf("%s accepted as output of input %s", out, a)
		}
	}
	if err := checkNotInput(filepath.Join(dir, "new.safetensors"), a); err != nil {
		t.Errorf("new output refused: %v", err)
	}
}

// TestNothingApplies: a merge whose only module breaks a shape rule writes
// nothing, even with the unmatched tensors allowed.
func TestNothingApplies(t *testing.T) {
	dir := t.TempDir()
	lp := filepath.Join(dir, "l.safetensors")
	const m = "lora_te_text_model_encoder_layers_0_mlp_fc1"
	specs := []safetensors.TensorSpec{{Name: m + ".lora_up.weight", DType: dtype.F32, Shape: []int64{32, 4}}, {Name: m + ".lora_down.weight", DType: dtype.F32, Shape: []int64{3, 16}}}
	if err := safetensors.WriteFile(lp, specs, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		return make([]byte, 4*s.Shape[0]*s.Shape[1]), nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan("../testdata/demo/sd15-tiny.safetensors", []Input{{Path: lp, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Unmatched) == 0 || !strings.Contains(p.Unmatched[0].Reason, "inner dimensions agree") {
		t.Fatalf("unmatched %v", p.Unmatched)
	}
	p.Unmatched = nil // --allow-unmatched
	out := filepath.Join(dir, "o.safetensors")
	if _, err := p.Execute(t.Context(), out, Options{}); !errors.Is(err, ErrNothingApplies) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written: %v", err)
	}
}
