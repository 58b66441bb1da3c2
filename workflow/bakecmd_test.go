package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/merge"
	"github.com/loratool/loratool/safetensors"
)

// mergeDirect runs the merge engine on its own, as `loratool merge` does.
func mergeDirect(t *testing.T, base string, in []merge.Input, opt merge.PlanOptions) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "direct.safetensors")
	p, err := merge.NewPlan(base, in, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Execute(context.Background(), out, merge.Options{}); err != nil {
		t.Fatal(err)
	}
	return out
}

// tensorDiff compares two safetensors files tensor by tensor: it returns
// the names whose bytes (or dtype or shape) differ and fails when the
// tensor sets differ.
func tensorDiff(t *testing.T, a, b string) []string {
	t.Helper()
	fa, err := safetensors.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := safetensors.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if len(fa.Tensors) != len(fb.Tensors) {
		t.Fatalf("%s has %d tensors, %s %d", a, len(fa.Tensors), b, len(fb.Tensors))
	}
	var diff []string
	for _, ta := range fa.Tensors {
		tb, ok := fb.Lookup(ta.Name)
		if !ok {
			t.Fatalf("%s lacks %s", b, ta.Name)
		}
		if ta.DType != tb.DType || !equalShape(ta.Shape, tb.Shape) || !bytes.Equal(fa.Bytes(ta), fb.Bytes(tb)) {
			diff = append(diff, ta.Name)
		}
	}
	return diff
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func countPrefix(names []string, prefix string) int {
	n := 0
	for _, s := range names {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// clipFromCheckpoint rewires the SD1.5 example so that the prompts take
// CLIP from the checkpoint (node 4) instead of the LoRA (node 11): the
// LoRA's text-encoder part is then not in effect.
func clipFromCheckpoint(doc map[string]any) {
	for _, id := range []float64{13, 14} {
		r := linkRow(doc, id)
		r[1], r[2] = 4.0, 1.0
	}
	nodeByID(doc, 11)["outputs"].([]any)[1].(map[string]any)["links"] = []any{}
	nodeByID(doc, 4)["outputs"].([]any)[1].(map[string]any)["links"] = []any{15.0, 13.0, 14.0}
}

func TestBakeCLI(t *testing.T) {
	sd15 := readFile(t, sd15File)
	tests := []struct {
		name       string
		workflow   []byte
		models     func(t *testing.T) string
		baseSub    string // models sub-folder of the base
		baseName   string
		loraName   string
		out        string // relative to the models folder
		args       []string
		in         merge.Input // path filled in
		opt        merge.PlanOptions
		wantName   string // base name in the rewritten workflow
		dtype      dtype.DType
		unetDiff   bool // diffusion-model tensors change
		clipDiff   bool // text-encoder tensors change
		diffPrefix string
	}{
		{"sd15 example", sd15, func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, "checkpoints", sd15Ckpt, sd15LoRA,
			"checkpoints/baked/sd15-pixel.safetensors", nil, merge.Input{StrengthModel: 1, StrengthClip: 1}, merge.PlanOptions{},
			"baked/sd15-pixel.safetensors", dtype.F16, true, true, "model.diffusion_model."},
		{"sd15 api, sampler given", readFile(t, sd15API), func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, "checkpoints", sd15Ckpt, sd15LoRA,
			"checkpoints/sd15-pixel.safetensors", []string{"--sampler", "3"}, merge.Input{StrengthModel: 1, StrengthClip: 1}, merge.PlanOptions{},
			"sd15-pixel.safetensors", dtype.F16, true, true, "model.diffusion_model."},
		{"sd15 LoRA CLIP unused", edit(t, sd15, clipFromCheckpoint), func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, "checkpoints", sd15Ckpt, sd15LoRA,
			"checkpoints/sd15-pixel-unet.safetensors", nil, merge.Input{StrengthModel: 1, StrengthClip: 0}, merge.PlanOptions{},
			"sd15-pixel-unet.safetensors", dtype.F16, true, false, "model.diffusion_model."},
		{"flux example fp8", readFile(t, fluxFile), func(t *testing.T) string { return fluxModels(t, fluxLoRASpec) }, "diffusion_models", fluxUNet, fluxLoRA,
			"diffusion_models/Flux/flux1-dev-fp8-portrait.safetensors", nil, merge.Input{StrengthModel: 0.8}, merge.PlanOptions{ModelOnly: true},
			"Flux/flux1-dev-fp8-portrait.safetensors", dtype.F8E4M3, true, false, ""},
		{"output outside the models folder", sd15, func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, "checkpoints", sd15Ckpt, sd15LoRA,
			"../elsewhere/sd15-pixel.safetensors", nil, merge.Input{StrengthModel: 1, StrengthClip: 1}, merge.PlanOptions{},
			"sd15-pixel.safetensors", dtype.F16, true, true, "model.diffusion_model."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.models(t)
			base := inModels(m, tc.baseSub, tc.baseName)
			out := filepath.Join(m, filepath.FromSlash(tc.out))
			mkdirFor(t, out)
			wf := writeWorkflow(t, tc.workflow)
			newWF := filepath.Join(t.TempDir(), "baked.json")
			args := append([]string{"bake", wf, "--models-dir", m, "-o", out, "--write-workflow", newWF}, tc.args...)
			code, _, errOut := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			// the same engine: equal to merge.NewPlan + Execute
			in := tc.in
			in.Path = inModels(m, "loras", tc.loraName)
			ref := mergeDirect(t, base, []merge.Input{in}, tc.opt)
			if d := tensorDiff(t, out, ref); len(d) != 0 {
				t.Errorf("%d tensors differ from the direct merge, e.g. %s", len(d), d[0])
			}
			changed := tensorDiff(t, out, base)
			unet := countPrefix(changed, tc.diffPrefix) - countPrefix(changed, "cond_stage_model.")
			clip := countPrefix(changed, "cond_stage_model.")
			if (unet > 0) != tc.unetDiff || (clip > 0) != tc.clipDiff {
				t.Errorf("changed: %d diffusion-model tensors, %d text-encoder tensors; want %v, %v", unet, clip, tc.unetDiff, tc.clipDiff)
			}
			h, err := safetensors.ReadHeader(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range h.Tensors {
				if ti.DType.IsFloat() && ti.DType != tc.dtype {
					t.Fatalf("output tensor %s is %v, want %v", ti.Name, ti.DType, tc.dtype)
				}
			}
			// the rewritten workflow: valid, names the new file, no LoRA left
			data := readFile(t, newWF)
			if err := Validate(data); err != nil {
				t.Fatalf("rewritten workflow: %v", err)
			}
			w, err := Parse(data, newWF)
			if err != nil {
				t.Fatal(err)
			}
			sts, err := w.Stacks()
			if err != nil || len(sts) != 1 {
				t.Fatalf("stacks %v %v", sts, err)
			}
			if sts[0].Base.Name != tc.wantName || len(sts[0].LoRAs) != 0 {
				t.Errorf("rewritten stack: base %q, %d LoRAs; want %q, 0", sts[0].Base.Name, len(sts[0].LoRAs), tc.wantName)
			}
			// and it checks clean against the models folder when the output lies in it
			if !strings.HasPrefix(tc.out, "../") {
				code, o, e := run(t, "inspect", newWF, "-m", m, "--json")
				if code != 0 {
					t.Fatalf("inspect of the rewritten workflow: exit %d %s %s", code, o, e)
				}
				if r := decodeReports(t, o)[0]; r.Base.Path != out || r.Errors+r.Warnings != 0 {
					t.Errorf("rewritten workflow report: %+v", r)
				}
			} else if !strings.Contains(errOut, "is not in a "+tc.baseSub+" folder") {
				t.Errorf("no warning about the output's place: %s", errOut)
			}
		})
	}
}

func TestBakeJSON(t *testing.T) {
	m := sd15Models(t, &sd1LoRASpec)
	out := filepath.Join(m, "checkpoints", "x.safetensors")
	code, stdout, errOut := run(t, "bake", sd15File, "-m", m, "-o", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Output     string   `json:"output"`
		Arch       string   `json:"architecture"`
		LoRAs      []string `json:"loras"`
		Sampler    string   `json:"sampler"`
		BakedNodes []string `json:"baked_nodes"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if rep.Output != out || rep.Arch != "sd1" || len(rep.LoRAs) != 1 || rep.Sampler != "3" || strings.Join(rep.BakedNodes, ",") != "11" {
		t.Errorf("report %+v", rep)
	}
}

func TestBakeCLIRefuses(t *testing.T) {
	sd15 := readFile(t, sd15File)
	fluxLL := func(t *testing.T) string {
		m := fluxModels(t, fluxLoRASpec)
		writeCkpt(t, inModels(m, "unet", "flux1-dev.safetensors"), fluxCkptSpec())
		writeLoRA(t, inModels(m, "loras", "f.safetensors"), fluxTELoRASpc)
		touch(t, inModels(m, "clip", "t5xxl_fp16.safetensors"))
		return m
	}
	tests := []struct {
		name     string
		workflow []byte
		models   func(t *testing.T) string
		extra    []string
		pre      bool // the output exists before
		msg      string
	}{
		{"missing LoRA", sd15, func(t *testing.T) string { return sd15Models(t, nil) }, nil, false, "refusing to bake sampler 3: 1 error(s)"},
		{"sdxl LoRA", sd15, func(t *testing.T) string { return sd15Models(t, &sdxlLoRASpec) }, nil, false, "refusing to bake sampler 3: 1 error(s)"},
		{"muted LoRA", edit(t, sd15, setMode(11, 2)), func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, nil, false, "LoRA node 11 is muted"},
		{"only a bypassed LoRA", edit(t, sd15, setMode(11, 4)), func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, nil, false, "no active LoRA; nothing to bake"},
		{"output exists", sd15, func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, nil, true, "exists (use --overwrite)"},
		{"clip strength on a diffusion model", fluxCustom(t, 1), fluxLL, nil, false, "a diffusion-model base (UNETLoader) cannot carry"},
		{"output folder missing", sd15, func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, []string{"-o", "SUB"}, false, "does not exist; nothing written"},
		{"bad dtype", sd15, func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, []string{"--dtype", "int3"}, false, "int3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.models(t)
			dir := t.TempDir()
			out := filepath.Join(dir, "out.safetensors")
			newWF := filepath.Join(dir, "new.json")
			if tc.pre {
				touch(t, out)
			}
			args := append([]string{"bake", writeWorkflow(t, tc.workflow), "-m", m, "-o", out, "--write-workflow", newWF}, tc.extra...)
			for i, a := range args {
				if a == "SUB" {
					args[i] = filepath.Join(dir, "missing", "out.safetensors")
				}
			}
			code, _, errOut := run(t, args...)
			if code != 1 || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d %q, want 1 and %q", code, errOut, tc.msg)
			}
			ents, _ := os.ReadDir(dir)
			want := 0
			if tc.pre {
				want = 1
			}
			if len(ents) != want {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("files written: %v", names)
			}
		})
	}
}
