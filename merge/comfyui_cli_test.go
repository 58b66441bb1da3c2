package merge

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// captureStdout runs f with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	f()
	os.Stdout = old
	w.Close()
	return <-done
}

// TestAllowUnmatchedJSONListsKeys: with --allow-unmatched the merge is
// written and the --json report still lists the tensors that matched
// nothing.
func TestAllowUnmatchedJSONListsKeys(t *testing.T) {
	g := loadGolden(t)
	dir := t.TempDir()
	base := goldenBase(t, dir, "sd1", g.BaseSHA256["sd1"])
	lp := filepath.Join(dir, "partly.safetensors")
	specs := []safetensors.TensorSpec{
		{Name: "lora_unet_" + "input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight", DType: dtype.F32, Shape: []int64{2, 10}},
		{Name: "lora_unet_" + "input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_up.weight", DType: dtype.F32, Shape: []int64{10, 2}},
		{Name: "lora_unet_no_such_module.lora_down.weight", DType: dtype.F32, Shape: []int64{2, 10}},
		{Name: "lora_unet_no_such_module.lora_up.weight", DType: dtype.F32, Shape: []int64{10, 2}},
	}
	w, err := safetensors.Create(lp, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Order() {
		v := make([]float32, 20)
		for i := range v {
			v[i] = 0.01 * float32(i+1)
		}
		b := make([]byte, 80)
		if _, err := dtype.Encode(dtype.F32, v, b); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(s.Name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	var runErr error
	stdout := captureStdout(t, func() {
		runErr = Command().Run(context.Background(), []string{"merge", "--base", base, "--lora", lp, "-o", out, "--allow-unmatched", "--json"})
	})
	if runErr != nil {
		t.Fatalf("merge: %v", runErr)
	}
	var rep Report
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &rep); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if len(rep.Unmatched) != 2 || !strings.HasPrefix(rep.Unmatched[0].Key, "lora_unet_no_such_module.") {
		t.Fatalf("unmatched = %+v, want the two no_such_module tensors", rep.Unmatched)
	}
	if rep.Patches != 1 {
		t.Fatalf("patches = %d, want 1", rep.Patches)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

// TestBFLControlPadding: a BFL control LoRA widens img_in (as ComfyUI's
// reshape_weight does) even at model strength 0, and not when both
// strengths are 0 (LoraLoader then does nothing).
func TestBFLControlPadding(t *testing.T) {
	g := loadGolden(t)
	dir := t.TempDir()
	base := goldenBase(t, dir, "flux1", g.BaseSHA256["flux1"])
	lp := filepath.Join(goldenDir, "flux1_bfl_control.lora.safetensors")
	for _, tc := range []struct {
		sm, sc    float64
		modelOnly bool
		cols      int64
	}{{1, 1, true, 128}, {0, 1, false, 128}, {0, 1, true, 64}, {0, 0, false, 64}} {
		plan, err := NewPlan(base, []Input{{Path: lp, StrengthModel: tc.sm, StrengthClip: tc.sc}}, PlanOptions{ModelOnly: tc.modelOnly})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "o.safetensors")
		if _, err := plan.Execute(context.Background(), out, Options{AllowUnmatched: true}); err != nil {
			t.Fatal(err)
		}
		plan.Close()
		h, err := safetensors.ReadHeader(out)
		if err != nil {
			t.Fatal(err)
		}
		ti, _ := h.Lookup("img_in.weight")
		if len(ti.Shape) != 2 || ti.Shape[1] != tc.cols {
			t.Errorf("strengths %g/%g model-only %v: img_in.weight %v, want [.., %d]", tc.sm, tc.sc, tc.modelOnly, ti.Shape, tc.cols)
		}
	}
}

// TestPEFTDoRAExact: --peft-dora applies PEFT's DoRA, re-derived here in
// float64: W' = m ⊙ (W + B·A) / ‖W + B·A‖ (row norms; scale 1 without a
// PEFT config); by default the magnitude is ignored (plain W + B·A).
func TestPEFTDoRAExact(t *testing.T) {
	g := loadGolden(t)
	dir := t.TempDir()
	base := goldenBase(t, dir, "flux1", g.BaseSHA256["flux1"])
	lp := filepath.Join(goldenDir, "flux1_peft_dora_raw.lora.safetensors")
	lf, err := safetensors.Open(lp)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	const mod = "transformer.transformer_blocks.1.attn.to_out.0"
	const key = "double_blocks.1.img_attn.proj.weight"
	B, bs := f64(t, lf, mod+".lora_B.weight")
	A, _ := f64(t, lf, mod+".lora_A.weight")
	m, _ := f64(t, lf, mod+".lora_magnitude_vector")
	bf, err := safetensors.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	W, ws := f64(t, bf, key)
	rows, cols, r := int(ws[0]), int(ws[1]), int(bs[1])
	plain := make([]float64, len(W))
	dora := make([]float64, len(W))
	for i := 0; i < rows; i++ {
		norm := 0.0
		for j := 0; j < cols; j++ {
			v := W[i*cols+j]
			for k := 0; k < r; k++ {
				v += B[i*r+k] * A[k*cols+j]
			}
			plain[i*cols+j] = v
			norm += v * v
		}
		norm = math.Sqrt(norm)
		for j := 0; j < cols; j++ {
			dora[i*cols+j] = m[i] * plain[i*cols+j] / norm
		}
	}
	for _, tc := range []struct {
		peft bool
		want []float64
	}{{false, plain}, {true, dora}} {
		plan, err := NewPlan(base, []Input{{Path: lp, StrengthModel: 1, StrengthClip: 1}}, PlanOptions{ModelOnly: true, PEFTDoRA: tc.peft})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "o.safetensors")
		if _, err := plan.Execute(context.Background(), out, Options{}); err != nil {
			t.Fatal(err)
		}
		plan.Close()
		of, err := safetensors.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := f64(t, of, key)
		of.Close()
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-5*math.Max(1, math.Abs(tc.want[i])) {
				t.Fatalf("peft-dora=%v: %s[%d] = %g, want %g", tc.peft, key, i, got[i], tc.want[i])
			}
		}
	}
}
