package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/merge"
	"github.com/loratool/loratool/safetensors"
)

// Names the example workflows use.
const (
	sd15Ckpt  = "v1-5-pruned-emaonly-fp16.safetensors"
	sd15LoRA  = `1.5\1.5-dpo-LoRA.safetensors`
	sd15VAE   = "vae-ft-mse-840000-ema-pruned.safetensors"
	fluxUNet  = `Flux\flux1-dev-fp8.safetensors`
	fluxLoRA  = `Flux.1\AWPortrait-FL-lora.safetensors`
	fluxVAE   = "ae.safetensors"
	fluxClipL = "clip_l.safetensors"
	fluxT5    = "t5xxl_fp8_e4m3fn.safetensors"
)

// run executes `workflow ARGS...` as loratool would and returns the exit
// status (0, or the cli.ExitCoder's code; -1 for other errors) and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	cmd := Command()
	cmd.Writer, cmd.ErrWriter = &out, &errw
	cmd.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	err := cmd.Run(context.Background(), append([]string{"workflow"}, args...))
	var ec cli.ExitCoder
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ec):
		code = ec.ExitCode()
		errw.WriteString(err.Error())
	default:
		code = -1
		errw.WriteString(err.Error())
	}
	return code, out.String(), errw.String()
}

// inModels returns the path of a file named as in a workflow under a
// models sub-folder.
func inModels(models, sub, name string) string {
	return filepath.Join(models, sub, filepath.FromSlash(strings.ReplaceAll(name, `\`, "/")))
}

func mkdirFor(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeCkpt(t *testing.T, p string, spec fixture.CheckpointSpec) {
	t.Helper()
	mkdirFor(t, p)
	if _, err := fixture.WriteCheckpoint(p, spec); err != nil {
		t.Fatal(err)
	}
}

func writeLoRA(t *testing.T, p string, spec fixture.LoRASpec) {
	t.Helper()
	mkdirFor(t, p)
	if _, err := fixture.WriteLoRA(p, spec); err != nil {
		t.Fatal(err)
	}
}

// touch creates a file that only has to exist (text encoders, VAEs).
func touch(t *testing.T, p string) {
	t.Helper()
	mkdirFor(t, p)
	if err := os.WriteFile(p, []byte("placeholder"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// LoRA specs of the tests.
var (
	sd1LoRASpec = fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Rank: 4, Alpha: 2, Seed: 11,
		Metadata: map[string]string{"modelspec.trigger_phrase": "pixel_art", "ss_network_dim": "4", "ss_network_alpha": "2"}}
	sdxlLoRASpec  = fixture.LoRASpec{Arch: "sdxl", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 12}
	fluxLoRASpec  = fixture.LoRASpec{Arch: "flux1", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 13, Parts: []arch.Part{arch.DiT}, Metadata: map[string]string{"modelspec.trigger_phrase": "fashion magazine"}}
	fluxTELoRASpc = fixture.LoRASpec{Arch: "flux1", Size: arch.Tiny, Rank: 4, Alpha: 4, Seed: 14, Metadata: map[string]string{"modelspec.trigger_phrase": "fashion magazine"}}
)

// sd15Models builds a models folder for the SD1.5 example: a Tiny sd1
// checkpoint, the LoRA from spec (nil: none) and a VAE placeholder.
func sd15Models(t *testing.T, spec *fixture.LoRASpec) string {
	t.Helper()
	m := filepath.Join(t.TempDir(), "models")
	writeCkpt(t, inModels(m, "checkpoints", sd15Ckpt), fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 1})
	if spec != nil {
		writeLoRA(t, inModels(m, "loras", sd15LoRA), *spec)
	}
	touch(t, inModels(m, "vae", sd15VAE))
	return m
}

// fluxModels builds a models folder for the Flux example: a Tiny flux1
// diffusion model in fp8 under diffusion_models/Flux/, the LoRA, and the
// text encoders (one in clip/, one in text_encoders/) and VAE.
func fluxModels(t *testing.T, spec fixture.LoRASpec) string {
	t.Helper()
	m := filepath.Join(t.TempDir(), "models")
	writeCkpt(t, inModels(m, "diffusion_models", fluxUNet), fluxCkptSpec())
	writeLoRA(t, inModels(m, "loras", fluxLoRA), spec)
	touch(t, inModels(m, "clip", fluxClipL))
	touch(t, inModels(m, "text_encoders", fluxT5))
	touch(t, inModels(m, "vae", fluxVAE))
	return m
}

// fluxCkptSpec is a Tiny flux1 diffusion model in fp8 (e4m3fn).
func fluxCkptSpec() fixture.CheckpointSpec {
	return fixture.CheckpointSpec{Arch: "flux1", Size: arch.Tiny, Seed: 2, DType: dtype.F8E4M3, Layout: fixture.LayoutDiffusionModel}
}

// withBogusModule copies a LoRA and adds a module that matches nothing.
func withBogusModule(t *testing.T, src, dst string) {
	t.Helper()
	f, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	specs := []safetensors.TensorSpec{
		{Name: "lora_unet_no_such_block_proj.lora_down.weight", DType: dtype.F16, Shape: []int64{4, 8}},
		{Name: "lora_unet_no_such_block_proj.lora_up.weight", DType: dtype.F16, Shape: []int64{8, 4}},
	}
	data := map[string][]byte{}
	for _, s := range specs {
		data[s.Name] = make([]byte, 2*s.Shape[0]*s.Shape[1])
	}
	for _, ti := range f.Tensors {
		specs = append(specs, safetensors.TensorSpec{Name: ti.Name, DType: ti.DType, Shape: ti.Shape})
		data[ti.Name] = f.Bytes(ti)
	}
	mkdirFor(t, dst)
	w, err := safetensors.Create(dst, specs, f.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Order() {
		if err := w.Write(s.Name, data[s.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// writeWorkflow writes data to a temporary workflow file.
func writeWorkflow(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "workflow.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func setWidget0(id float64, v any) func(doc map[string]any) {
	return func(doc map[string]any) {
		nodeByID(doc, id)["widgets_values"].([]any)[0] = v
	}
}

func setMode(id float64, mode int) func(doc map[string]any) {
	return func(doc map[string]any) { nodeByID(doc, id)["mode"] = mode }
}

// decodeReports parses `inspect --json` output.
func decodeReports(t *testing.T, out string) []Report {
	t.Helper()
	var rs []Report
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		rs = append(rs, r)
	}
	return rs
}

func issueCodes(r Report) map[string]string {
	m := map[string]string{}
	for _, is := range r.Issues {
		m[is.Code] = is.Severity
	}
	return m
}

func TestInspectCLI(t *testing.T) {
	sd15 := readFile(t, sd15File)
	flux := readFile(t, fluxFile)
	tests := []struct {
		name     string
		workflow []byte
		models   func(t *testing.T) string
		code     int
		issues   map[string]string // code → severity, exactly
		contains []string          // substrings of the issue messages
	}{
		{"sd15 clean", sd15, func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, 0, map[string]string{}, nil},
		{"sd15 prompt lacks trigger", edit(t, sd15, setWidget0(6, "Illustration of a single red rose in a vase")),
			func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, 0,
			map[string]string{CodeTriggerWords: SeverityWarning}, []string{`no prompt contains the trigger word(s) "pixel_art" of LoRA 1.5\1.5-dpo-LoRA.safetensors`}},
		{"sd15 trigger case-insensitive", edit(t, sd15, setWidget0(6, "PIXEL_ART, a rose")),
			func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, 0, map[string]string{}, nil},
		{"sd15 with sdxl LoRA", sd15, func(t *testing.T) string { return sd15Models(t, &sdxlLoRASpec) }, 1,
			map[string]string{CodeArchMismatch: SeverityError, CodeTriggerWords: SeverityWarning},
			[]string{`1.5\1.5-dpo-LoRA.safetensors is an sdxl LoRA on an sd1 checkpoint (v1-5-pruned-emaonly-fp16.safetensors, node 4)`}},
		{"sd15 LoRA missing", sd15, func(t *testing.T) string { return sd15Models(t, nil) }, 1,
			map[string]string{CodeMissingFile: SeverityError},
			[]string{`LoRA "1.5\1.5-dpo-LoRA.safetensors" of node 11 (LoraLoader) not found; looked in /`, filepath.Join("models", "loras", "1.5", "1.5-dpo-LoRA.safetensors")}},
		{"sd15 bypassed LoRA missing", edit(t, sd15, setMode(11, 4)), func(t *testing.T) string { return sd15Models(t, nil) }, 0,
			map[string]string{CodeMissingFile: SeverityWarning}, []string{"(LoraLoader), bypassed, not found"}},
		{"sd15 muted LoRA", edit(t, sd15, setMode(11, 2)), func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, 0,
			map[string]string{CodeChain: SeverityWarning}, []string{"LoRA node 11 (LoraLoader) is muted, so sampler 3 gets no model"}},
		{"sd15 checkpoint missing", edit(t, sd15, func(doc map[string]any) { setWidget0(4, `sub\nothere.safetensors`)(doc) }),
			func(t *testing.T) string { return sd15Models(t, &sd1LoRASpec) }, 1,
			map[string]string{CodeMissingFile: SeverityError}, []string{`checkpoint "sub\nothere.safetensors" of node 4`, filepath.Join("checkpoints", "sub", "nothere.safetensors")}},
		{"sd15 unloadable keys", sd15, func(t *testing.T) string {
			m := sd15Models(t, nil)
			src := filepath.Join(t.TempDir(), "src.safetensors")
			writeLoRA(t, src, sd1LoRASpec)
			withBogusModule(t, src, inModels(m, "loras", sd15LoRA))
			return m
		}, 1, map[string]string{CodeUnloadable: SeverityError},
			[]string{"2 tensors of LoRA 1.5\\1.5-dpo-LoRA.safetensors will not load on v1-5-pruned-emaonly-fp16.safetensors: lora_unet_no_such_block_proj.lora_down.weight (no module of sd1 has this name)"}},
		{"flux clean", flux, func(t *testing.T) string { return fluxModels(t, fluxLoRASpec) }, 0, map[string]string{}, nil},
		{"flux LoRA with text-encoder parts, model only", flux, func(t *testing.T) string { return fluxModels(t, fluxTELoRASpc) }, 0,
			map[string]string{CodeModelOnlyTE: SeverityWarning},
			[]string{`LoRA Flux.1\AWPortrait-FL-lora.safetensors also trains the text encoder (clip-l, t5), which LoraLoaderModelOnly node 44 does not apply`}},
		{"flux with sd1 LoRA", flux, func(t *testing.T) string {
			m := fluxModels(t, fluxLoRASpec)
			writeLoRA(t, inModels(m, "loras", fluxLoRA), sd1LoRASpec)
			return m
		}, 1, map[string]string{CodeArchMismatch: SeverityError, CodeTriggerWords: SeverityWarning, CodeModelOnlyTE: SeverityWarning},
			[]string{"Flux.1\\AWPortrait-FL-lora.safetensors is an sd1 LoRA on a flux1 diffusion model (Flux\\flux1-dev-fp8.safetensors, node 41)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.models(t)
			wf := writeWorkflow(t, tc.workflow)
			code, out, errOut := run(t, "inspect", wf, "--models-dir", m, "--json")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			rs := decodeReports(t, out)
			if len(rs) != 1 {
				t.Fatalf("%d reports, want 1", len(rs))
			}
			r := rs[0]
			if got := issueCodes(r); !equalMaps(got, tc.issues) {
				t.Errorf("issues %v, want %v\n%+v", got, tc.issues, r.Issues)
			}
			var msgs []string
			for _, is := range r.Issues {
				msgs = append(msgs, is.Message)
			}
			all := strings.Join(msgs, "\n")
			for _, c := range tc.contains {
				if !strings.Contains(all, c) {
					t.Errorf("issues lack %q:\n%s", c, all)
				}
			}
			if !r.Checked {
				t.Error("files_checked is false")
			}
			// the text form says the same and exits the same way
			code2, text, _ := run(t, "inspect", wf, "--models-dir", m)
			if code2 != code {
				t.Errorf("text form exit %d, JSON form %d", code2, code)
			}
			for _, c := range tc.contains {
				if !strings.Contains(text, c) {
					t.Errorf("text output lacks %q:\n%s", c, text)
				}
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestInspectResolvesExamples checks the resolved paths, architectures
// and strengths of both examples against the files the test wrote.
func TestInspectResolvesExamples(t *testing.T) {
	sdm := sd15Models(t, &sd1LoRASpec)
	fm := fluxModels(t, fluxLoRASpec)
	sdPlan, err := merge.NewPlan(inModels(sdm, "checkpoints", sd15Ckpt), []merge.Input{{Path: inModels(sdm, "loras", sd15LoRA), StrengthModel: 1, StrengthClip: 1}}, merge.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sdPatches := len(sdPlan.Patches)
	sdPlan.Close()
	fPlan, err := merge.NewPlan(inModels(fm, "diffusion_models", fluxUNet), []merge.Input{{Path: inModels(fm, "loras", fluxLoRA), StrengthModel: 0.8}}, merge.PlanOptions{ModelOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fPatches := len(fPlan.Patches)
	fPlan.Close()

	tests := []struct {
		file, models                 string
		base, baseArch, layout, kind string
		lora                         string
		sm, sc                       float64
		modelOnly                    bool
		patches                      int
		others                       []string
		prompts                      int
	}{
		{sd15File, sdm, inModels(sdm, "checkpoints", sd15Ckpt), "sd1", "single-file", KindCheckpoint,
			inModels(sdm, "loras", sd15LoRA), 1, 1, false, sdPatches, []string{inModels(sdm, "vae", sd15VAE)}, 2},
		{sd15API, sdm, inModels(sdm, "checkpoints", sd15Ckpt), "sd1", "single-file", KindCheckpoint,
			inModels(sdm, "loras", sd15LoRA), 1, 1, false, sdPatches, []string{inModels(sdm, "vae", sd15VAE)}, 2},
		{fluxFile, fm, inModels(fm, "diffusion_models", fluxUNet), "flux1", "diffusion-model", KindDiffusionModel,
			inModels(fm, "loras", fluxLoRA), 0.8, 0, true, fPatches,
			[]string{inModels(fm, "clip", fluxClipL), inModels(fm, "text_encoders", fluxT5), inModels(fm, "vae", fluxVAE)}, 2},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			code, out, errOut := run(t, "inspect", "--json", tc.file, "-m", tc.models)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			r := decodeReports(t, out)[0]
			if r.Base.Path != tc.base || r.Base.Architecture != tc.baseArch || r.Base.Layout != tc.layout || r.Base.Kind != tc.kind {
				t.Errorf("base = %+v", r.Base)
			}
			if len(r.LoRAs) != 1 {
				t.Fatalf("loras = %+v", r.LoRAs)
			}
			l := r.LoRAs[0]
			if l.Path != tc.lora || l.StrengthModel != tc.sm || l.StrengthClip != tc.sc || l.ModelOnly != tc.modelOnly || l.Architecture != tc.baseArch || l.Patches != tc.patches || l.Unmatched != 0 {
				t.Errorf("lora = %+v", l)
			}
			var others []string
			for _, f := range append(r.TextEncoders, r.VAEs...) {
				others = append(others, f.Path)
			}
			if strings.Join(others, "|") != strings.Join(tc.others, "|") {
				t.Errorf("other files %v, want %v", others, tc.others)
			}
			if len(r.Prompts) != tc.prompts || r.Errors != 0 || r.Warnings != 0 {
				t.Errorf("prompts %d, errors %d, warnings %d: %+v", len(r.Prompts), r.Errors, r.Warnings, r.Issues)
			}
		})
	}
}

func TestInspectWithoutModels(t *testing.T) {
	code, out, _ := run(t, "inspect", sd15File)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"sampler 3 (KSampler)",
		`base    node 4 CheckpointLoaderSimple "v1-5-pruned-emaonly-fp16.safetensors"`,
		`lora 1  node 11 LoraLoader "1.5\1.5-dpo-LoRA.safetensors" strength model 1, clip 1`,
		`prompt  node 6 CLIPTextEncode.text (positive): "pixel_art,high quality,Illustration of a single red rose in a vase"`,
		"files not checked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// custom node packs are reported by name; two samplers give two lines
	for _, tc := range []struct {
		data  []byte
		lines int
		want  []string
	}{
		{customPacks(t), 1, []string{"Power Lora Loader (rgthree)", "CR Apply LoRA Stack", "CR LoRA Stack"}},
		{twoSamplers(t), 2, nil},
	} {
		code, out, _ := run(t, "inspect", "--json", writeWorkflow(t, tc.data))
		rs := decodeReports(t, out)
		if code != 0 || len(rs) != tc.lines {
			t.Fatalf("exit %d, %d lines", code, len(rs))
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q", w)
			}
		}
		if len(tc.want) > 0 && issueCodes(rs[0])[CodeUnsupported] != SeverityWarning {
			t.Errorf("issues %+v", rs[0].Issues)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"inspect"}, 2, "needs exactly one WORKFLOW.json"},
		{[]string{"inspect", sd15File, fluxFile}, 2, "needs exactly one WORKFLOW.json"},
		{[]string{"inspect", sd15File, "--models-dir", filepath.Join(dir, "nope")}, 2, "--models-dir"},
		{[]string{"inspect", filepath.Join(dir, "missing.json")}, 1, "missing.json: no such file or directory"},
		{[]string{"bake", sd15File, "-m", dir}, 2, "needs -o"},
		{[]string{"bake", sd15File, "-o", filepath.Join(dir, "o.safetensors")}, 2, "needs --models-dir"},
		{[]string{"bake", writeWorkflow(t, twoSamplers(t)), "-m", dir, "-o", filepath.Join(dir, "o.safetensors")}, 2, "2 samplers with different stacks (3, 5); choose one with --sampler"},
		{[]string{"bake", sd15File, "-m", dir, "-o", filepath.Join(dir, "o.safetensors"), "--sampler", "9"}, 2, "has no sampler 9 (samplers: 3)"},
	}
	for _, tc := range tests {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d %q, want %d %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}
