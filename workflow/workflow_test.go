package workflow

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	sd15File = "testdata/sd15-pixel-art-lora.json"
	fluxFile = "testdata/flux1-dev-fp8-lora-model-only.json"
	sd15API  = "testdata/sd15-api.json"
)

// --- a small builder for consistent UI-format workflows --------------------

type bn struct {
	id      int
	typ     string
	mode    int
	in      []string // "name:TYPE"
	out     []string // output types
	widgets any
}

type bl struct {
	from, slot, to int
	input          string
}

func buildUI(t *testing.T, nodes []bn, links []bl) []byte {
	t.Helper()
	type slot = map[string]any
	nodeIn := map[int][]slot{}
	nodeOut := map[int][]slot{}
	lastNode := 0
	for _, n := range nodes {
		for _, s := range n.in {
			name, typ, _ := strings.Cut(s, ":")
			nodeIn[n.id] = append(nodeIn[n.id], slot{"name": name, "type": typ, "link": nil})
		}
		for _, typ := range n.out {
			nodeOut[n.id] = append(nodeOut[n.id], slot{"name": typ, "type": typ, "links": []any{}})
		}
		lastNode = max(lastNode, n.id)
	}
	var rows []any
	for i, l := range links {
		id := i + 1
		toSlot := -1
		for j, s := range nodeIn[l.to] {
			if s["name"] == l.input {
				toSlot = j
			}
		}
		if toSlot < 0 || l.slot >= len(nodeOut[l.from]) {
			t.Fatalf("builder: bad link %+v", l)
		}
		nodeIn[l.to][toSlot]["link"] = id
		o := nodeOut[l.from][l.slot]
		o["links"] = append(o["links"].([]any), id)
		rows = append(rows, []any{id, l.from, l.slot, l.to, toSlot, o["type"]})
	}
	var ns []any
	for _, n := range nodes {
		ns = append(ns, map[string]any{
			"id": n.id, "type": n.typ, "mode": n.mode,
			"inputs": nodeIn[n.id], "outputs": nodeOut[n.id],
			"properties": map[string]any{}, "widgets_values": n.widgets,
		})
	}
	doc := map[string]any{
		"last_node_id": lastNode, "last_link_id": len(links),
		"nodes": ns, "links": rows, "groups": []any{},
		"extra": map[string]any{"custom_tool": map[string]any{"keep": true}}, "version": 0.4,
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func ckpt(id int, name string) bn {
	return bn{id, "CheckpointLoaderSimple", 0, nil, []string{"MODEL", "CLIP", "VAE"}, []any{name}}
}
func unet(id int, name string) bn {
	return bn{id, "UNETLoader", 0, nil, []string{"MODEL"}, []any{name, "fp8_e4m3fn"}}
}
func lora(id, mode int, name string, sm, sc float64) bn {
	return bn{id, "LoraLoader", mode, []string{"model:MODEL", "clip:CLIP"}, []string{"MODEL", "CLIP"}, []any{name, sm, sc}}
}
func loraM(id, mode int, name string, sm float64) bn {
	return bn{id, "LoraLoaderModelOnly", mode, []string{"model:MODEL"}, []string{"MODEL"}, []any{name, sm}}
}
func enc(id int, text string) bn {
	return bn{id, "CLIPTextEncode", 0, []string{"clip:CLIP"}, []string{"CONDITIONING"}, []any{text}}
}
func ksampler(id int) bn {
	return bn{id, "KSampler", 0, []string{"model:MODEL", "positive:CONDITIONING", "negative:CONDITIONING", "latent_image:LATENT"},
		[]string{"LATENT"}, []any{1, "fixed", 20, 8, "euler", "normal", 1}}
}
func latent(id int) bn {
	return bn{id, "EmptyLatentImage", 0, nil, []string{"LATENT"}, []any{512, 512, 1}}
}

// samplerLinks wires model, two prompts and a latent into a KSampler.
func samplerLinks(model, modelSlot, pos, neg, lat, sampler int) []bl {
	return []bl{{model, modelSlot, sampler, "model"}, {pos, 0, sampler, "positive"}, {neg, 0, sampler, "negative"}, {lat, 0, sampler, "latent_image"}}
}

// threeLoRAs: ckpt 1 → LoraLoader 2 (active) → LoraLoader 3 (bypassed) →
// LoraLoaderModelOnly 4 (muted) → ModelSamplingDiscrete 5 → KSampler 6; the
// prompts take CLIP from LoRA 3 through a Reroute.
func threeLoRAs(t *testing.T) []byte {
	nodes := []bn{
		ckpt(1, "sd15.safetensors"),
		lora(2, 0, "a.safetensors", 1, 0.5),
		lora(3, 4, "b.safetensors", 0.7, 0.7),
		loraM(4, 2, "c.safetensors", 0.3),
		{5, "ModelSamplingDiscrete", 0, []string{"model:MODEL"}, []string{"MODEL"}, []any{"eps", false}},
		ksampler(6), enc(7, "a cat, style_a"), enc(8, "blurry"), latent(9),
		{10, "Reroute", 0, []string{":*"}, []string{"CLIP"}, nil},
	}
	links := []bl{{1, 0, 2, "model"}, {1, 1, 2, "clip"}, {2, 0, 3, "model"}, {2, 1, 3, "clip"},
		{3, 0, 4, "model"}, {4, 0, 5, "model"}, {3, 1, 10, ""}, {10, 0, 7, "clip"}, {10, 0, 8, "clip"}}
	return buildUI(t, nodes, append(links, samplerLinks(5, 0, 7, 8, 9, 6)...))
}

// twoSamplers: ckpt 1 → LoRA 2 → KSampler 3, and LoRA 2 → LoRA 4 → KSampler 5.
func twoSamplers(t *testing.T) []byte {
	nodes := []bn{ckpt(1, "base.safetensors"), lora(2, 0, "x.safetensors", 1, 1), ksampler(3),
		loraM(4, 0, "y.safetensors", 0.5), ksampler(5), enc(6, "pos"), enc(7, "neg"), latent(8)}
	links := []bl{{1, 0, 2, "model"}, {1, 1, 2, "clip"}, {2, 0, 4, "model"}, {2, 1, 6, "clip"}, {2, 1, 7, "clip"}}
	links = append(links, samplerLinks(2, 0, 6, 7, 8, 3)...)
	links = append(links, samplerLinks(4, 0, 6, 7, 8, 5)...)
	return buildUI(t, nodes, links)
}

// customPacks: ckpt 1 → Power Lora Loader (rgthree) 2 → CR Apply LoRA Stack 3
// (fed by CR LoRA Stack 4) → LoraLoaderModelOnly 5 → KSampler 6.
func customPacks(t *testing.T) []byte {
	nodes := []bn{
		ckpt(1, "sdxl.safetensors"),
		{2, "Power Lora Loader (rgthree)", 0, []string{"model:MODEL", "clip:CLIP"}, []string{"MODEL", "CLIP"},
			[]any{map[string]any{}, map[string]any{"on": true, "lora": "p.safetensors", "strength": 1}, ""}},
		{3, "CR Apply LoRA Stack", 0, []string{"model:MODEL", "clip:CLIP", "lora_stack:LORA_STACK"}, []string{"MODEL", "CLIP", "STRING"}, []any{}},
		{4, "CR LoRA Stack", 0, nil, []string{"LORA_STACK", "STRING"}, []any{"On", "q.safetensors", 1, 1}},
		loraM(5, 0, "r.safetensors", 0.9), ksampler(6), enc(7, "pos"), enc(8, "neg"), latent(9),
	}
	links := []bl{{1, 0, 2, "model"}, {1, 1, 2, "clip"}, {2, 0, 3, "model"}, {2, 1, 3, "clip"}, {4, 0, 3, "lora_stack"},
		{3, 0, 5, "model"}, {3, 1, 7, "clip"}, {3, 1, 8, "clip"}}
	return buildUI(t, nodes, append(links, samplerLinks(5, 0, 7, 8, 9, 6)...))
}

// fluxCustom: UNETLoader 1 → LoraLoader 2 (clip from DualCLIPLoader 3) →
// ModelSamplingFlux 4 → BasicGuider 5 → SamplerCustomAdvanced 6, prompt via
// CLIPTextEncodeFlux 7 and FluxGuidance 8.
func fluxCustom(t *testing.T, strengthClip float64) []byte {
	nodes := []bn{
		unet(1, "flux1-dev.safetensors"),
		lora(2, 0, "f.safetensors", 1, strengthClip),
		{3, "DualCLIPLoader", 0, nil, []string{"CLIP"}, []any{"clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"}},
		{4, "ModelSamplingFlux", 0, []string{"model:MODEL"}, []string{"MODEL"}, []any{1.15, 0.5, 1024, 1024}},
		{5, "BasicGuider", 0, []string{"model:MODEL", "conditioning:CONDITIONING"}, []string{"GUIDER"}, []any{}},
		{6, "SamplerCustomAdvanced", 0, []string{"noise:NOISE", "guider:GUIDER", "sampler:SAMPLER", "sigmas:SIGMAS", "latent_image:LATENT"},
			[]string{"LATENT", "LATENT"}, []any{}},
		{7, "CLIPTextEncodeFlux", 0, []string{"clip:CLIP"}, []string{"CONDITIONING"}, []any{"clip l text", "t5 text", 3.5}},
		{8, "FluxGuidance", 0, []string{"conditioning:CONDITIONING"}, []string{"CONDITIONING"}, []any{3.5}},
	}
	links := []bl{{1, 0, 2, "model"}, {3, 0, 2, "clip"}, {2, 0, 4, "model"}, {4, 0, 5, "model"},
		{2, 1, 7, "clip"}, {7, 0, 8, "conditioning"}, {8, 0, 5, "conditioning"}, {5, 0, 6, "guider"}}
	return buildUI(t, nodes, links)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// --- Stacks -----------------------------------------------------------------

func TestStacks(t *testing.T) {
	sd15LoRA := LoRA{NodeID: "11", NodeType: "LoraLoader", Name: `1.5\1.5-dpo-LoRA.safetensors`,
		StrengthModel: 1, StrengthClip: 1, Mode: "active", ClipChain: true}
	sd15Base := Base{NodeID: "4", NodeType: "CheckpointLoaderSimple", Name: "v1-5-pruned-emaonly-fp16.safetensors", Kind: KindCheckpoint}
	sd15Prompts := []Prompt{
		{NodeID: "6", NodeType: "CLIPTextEncode", Field: "text", Role: "positive", Text: "pixel_art,high quality,Illustration of a single red rose in a vase"},
		{NodeID: "7", NodeType: "CLIPTextEncode", Field: "text", Role: "negative", Text: "text, watermark"},
	}
	type want struct {
		sampler, samplerType string
		base                 Base
		loras                []LoRA
		clip                 []CLIPLoader
		prompts              []Prompt // nil: not checked
		unsupported          []NodeRef
		problems             []string // substrings, in order
	}
	tests := []struct {
		name   string
		format Format
		data   []byte
		want   []want
	}{
		{"sd15 example", UI, readFile(t, sd15File), []want{{
			sampler: "3", samplerType: "KSampler", base: sd15Base,
			loras: []LoRA{sd15LoRA}, prompts: sd15Prompts,
		}}},
		{"sd15 api", API, readFile(t, sd15API), []want{{
			sampler: "3", samplerType: "KSampler", base: sd15Base,
			loras: []LoRA{sd15LoRA}, prompts: sd15Prompts,
		}}},
		{"flux example", UI, readFile(t, fluxFile), []want{{
			sampler: "31", samplerType: "KSampler",
			base: Base{NodeID: "41", NodeType: "UNETLoader", Name: `Flux\flux1-dev-fp8.safetensors`, Kind: KindDiffusionModel, WeightDType: "default"},
			loras: []LoRA{{NodeID: "44", NodeType: "LoraLoaderModelOnly", Name: `Flux.1\AWPortrait-FL-lora.safetensors`,
				StrengthModel: 0.8, ModelOnly: true, Mode: "active"}},
			clip: []CLIPLoader{{NodeID: "42", NodeType: "DualCLIPLoader", Names: []string{"clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"}, Type: "flux"}},
		}}},
		{"three loras, bypassed and muted", UI, threeLoRAs(t), []want{{
			sampler: "6", samplerType: "KSampler",
			base: Base{NodeID: "1", NodeType: "CheckpointLoaderSimple", Name: "sd15.safetensors", Kind: KindCheckpoint},
			loras: []LoRA{
				{NodeID: "2", NodeType: "LoraLoader", Name: "a.safetensors", StrengthModel: 1, StrengthClip: 0.5, Mode: "active", ClipChain: true},
				{NodeID: "3", NodeType: "LoraLoader", Name: "b.safetensors", StrengthModel: 0.7, StrengthClip: 0.7, Mode: "bypassed", ClipChain: true},
				{NodeID: "4", NodeType: "LoraLoaderModelOnly", Name: "c.safetensors", StrengthModel: 0.3, ModelOnly: true, Mode: "muted"},
			},
			prompts: []Prompt{
				{NodeID: "7", NodeType: "CLIPTextEncode", Field: "text", Role: "positive", Text: "a cat, style_a"},
				{NodeID: "8", NodeType: "CLIPTextEncode", Field: "text", Role: "negative", Text: "blurry"},
			},
			problems: []string{"LoRA node 4 (LoraLoaderModelOnly) is muted, so sampler 6 gets no model"},
		}}},
		{"two samplers", UI, twoSamplers(t), []want{
			{sampler: "3", samplerType: "KSampler",
				base:  Base{NodeID: "1", NodeType: "CheckpointLoaderSimple", Name: "base.safetensors", Kind: KindCheckpoint},
				loras: []LoRA{{NodeID: "2", NodeType: "LoraLoader", Name: "x.safetensors", StrengthModel: 1, StrengthClip: 1, Mode: "active", ClipChain: true}}},
			{sampler: "5", samplerType: "KSampler",
				base: Base{NodeID: "1", NodeType: "CheckpointLoaderSimple", Name: "base.safetensors", Kind: KindCheckpoint},
				loras: []LoRA{{NodeID: "2", NodeType: "LoraLoader", Name: "x.safetensors", StrengthModel: 1, StrengthClip: 1, Mode: "active", ClipChain: true},
					{NodeID: "4", NodeType: "LoraLoaderModelOnly", Name: "y.safetensors", StrengthModel: 0.5, ModelOnly: true, Mode: "active"}}},
		}},
		{"custom lora packs", UI, customPacks(t), []want{{
			sampler: "6", samplerType: "KSampler",
			base:        Base{NodeID: "1", NodeType: "CheckpointLoaderSimple", Name: "sdxl.safetensors", Kind: KindCheckpoint},
			loras:       []LoRA{{NodeID: "5", NodeType: "LoraLoaderModelOnly", Name: "r.safetensors", StrengthModel: 0.9, ModelOnly: true, Mode: "active"}},
			unsupported: []NodeRef{{"3", "CR Apply LoRA Stack"}, {"2", "Power Lora Loader (rgthree)"}, {"4", "CR LoRA Stack"}},
		}}},
		{"flux custom sampler with guider", UI, fluxCustom(t, 0), []want{{
			sampler: "6", samplerType: "SamplerCustomAdvanced",
			base:  Base{NodeID: "1", NodeType: "UNETLoader", Name: "flux1-dev.safetensors", Kind: KindDiffusionModel, WeightDType: "fp8_e4m3fn"},
			loras: []LoRA{{NodeID: "2", NodeType: "LoraLoader", Name: "f.safetensors", StrengthModel: 1, Mode: "active", ClipChain: true}},
			clip:  []CLIPLoader{{NodeID: "3", NodeType: "DualCLIPLoader", Names: []string{"clip_l.safetensors", "t5xxl_fp16.safetensors"}, Type: "flux"}},
			prompts: []Prompt{
				{NodeID: "7", NodeType: "CLIPTextEncodeFlux", Field: "clip_l", Role: "conditioning", Text: "clip l text"},
				{NodeID: "7", NodeType: "CLIPTextEncodeFlux", Field: "t5xxl", Role: "conditioning", Text: "t5 text"},
			},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Parse(tc.data, "test.json")
			if err != nil {
				t.Fatal(err)
			}
			if w.Format != tc.format {
				t.Errorf("format = %v, want %v", w.Format, tc.format)
			}
			if err := Validate(tc.data); err != nil {
				t.Errorf("Validate: %v", err)
			}
			stacks, err := w.Stacks()
			if err != nil {
				t.Fatal(err)
			}
			if len(stacks) != len(tc.want) {
				t.Fatalf("got %d stacks, want %d: %+v", len(stacks), len(tc.want), stacks)
			}
			for i, wt := range tc.want {
				st := stacks[i]
				if st.SamplerID != wt.sampler || st.SamplerType != wt.samplerType {
					t.Errorf("sampler = %s %s, want %s %s", st.SamplerID, st.SamplerType, wt.sampler, wt.samplerType)
				}
				if st.Base != wt.base {
					t.Errorf("base = %+v\nwant %+v", st.Base, wt.base)
				}
				if !reflect.DeepEqual(st.LoRAs, wt.loras) {
					t.Errorf("loras = %+v\nwant %+v", st.LoRAs, wt.loras)
				}
				if !reflect.DeepEqual(st.CLIPLoaders, wt.clip) {
					t.Errorf("clip loaders = %+v, want %+v", st.CLIPLoaders, wt.clip)
				}
				if wt.prompts != nil && !reflect.DeepEqual(st.Prompts, wt.prompts) {
					t.Errorf("prompts = %+v\nwant %+v", st.Prompts, wt.prompts)
				}
				if !reflect.DeepEqual(st.Unsupported, wt.unsupported) {
					t.Errorf("unsupported = %+v, want %+v", st.Unsupported, wt.unsupported)
				}
				if len(st.Problems) != len(wt.problems) {
					t.Errorf("problems = %q, want %q", st.Problems, wt.problems)
				} else {
					for j, p := range wt.problems {
						if !strings.Contains(st.Problems[j], p) {
							t.Errorf("problem %d = %q, want it to contain %q", j, st.Problems[j], p)
						}
					}
				}
			}
		})
	}
}

// TestFluxExamplePrompt checks the prompt found through FluxGuidance.
func TestFluxExamplePrompt(t *testing.T) {
	w, err := Load(fluxFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.Stacks()
	if err != nil {
		t.Fatal(err)
	}
	p := st[0].Prompts
	if len(p) != 2 || p[0].NodeID != "6" || p[0].Role != "positive" || !strings.HasPrefix(p[0].Text, "Fashion magazine style portrait") ||
		p[1].NodeID != "33" || p[1].Role != "negative" || p[1].Text != "" {
		t.Errorf("prompts = %+v", p)
	}
	if fileBase(st[0].Base.Name) != "flux1-dev-fp8.safetensors" {
		t.Errorf("base file = %q", st[0].Base.Name)
	}
}

// --- errors -----------------------------------------------------------------

// edit parses UI JSON into generic maps, applies f and re-marshals.
func edit(t *testing.T, data []byte, f func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	f(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func nodeByID(doc map[string]any, id float64) map[string]any {
	for _, n := range doc["nodes"].([]any) {
		if m := n.(map[string]any); m["id"] == id {
			return m
		}
	}
	return nil
}

func linkRow(doc map[string]any, id float64) []any {
	for _, l := range doc["links"].([]any) {
		if r := l.([]any); r[0] == id {
			return r
		}
	}
	return nil
}

func TestErrors(t *testing.T) {
	sd15 := readFile(t, sd15File)
	api := readFile(t, sd15API)
	tests := []struct {
		name     string
		data     []byte
		parseErr string // error from Parse
		stackErr string // error from Stacks
		valErr   string // error from Validate ("" = same as parse error or none)
	}{
		{name: "not json", data: []byte("{\n  \"nodes\": [\n}"), parseErr: "w.json: invalid JSON at line 3"},
		{name: "trailing data", data: []byte(`{"nodes":[],"links":[]} {}`), parseErr: "unexpected data after"},
		{name: "array", data: []byte(`[]`), parseErr: "w.json: not a ComfyUI workflow"},
		{name: "neither format", data: []byte(`{"a": {"x": 1}}`), parseErr: `w.json: not a ComfyUI workflow: neither UI format (no "nodes" array) nor API format (entry "a" has no class_type)`},
		{name: "prompt body", data: []byte(`{"prompt": {"1": {"class_type": "KSampler", "inputs": {}}}, "client_id": "x"}`), parseErr: `/prompt request body`},
		{name: "duplicate node", data: []byte(`{"nodes":[{"id":1,"type":"A"},{"id":1,"type":"B"}],"links":[]}`), parseErr: "w.json: node id 1 appears more than once"},
		{name: "bad link row", data: []byte(`{"nodes":[],"links":[[1,2]]}`), parseErr: "w.json: links[0]: has 2 fields"},
		{
			name: "input link not in table",
			data: edit(t, sd15, func(d map[string]any) {
				nodeByID(d, 3)["inputs"].([]any)[0].(map[string]any)["link"] = 99
			}),
			stackErr: `w.json: node 3 input "model" uses link 99, which is not in the links table`,
			valErr:   "link 12 goes to input slot 0 of node 3 (KSampler), but that input holds link 99",
		},
		{
			name: "link from missing node",
			data: edit(t, sd15, func(d map[string]any) {
				linkRow(d, 12)[1] = 7.0 + 70
			}),
			stackErr: "w.json: link 12 points to node 77, which does not exist",
			valErr:   "link 12 points to node 77, which does not exist",
		},
		{
			name: "link slot out of range",
			data: edit(t, sd15, func(d map[string]any) {
				linkRow(d, 11)[2] = 5.0
			}),
			stackErr: "w.json: link 11 comes from output slot 5 of node 4 (CheckpointLoaderSimple), which has 3 outputs",
			valErr:   "link 11 comes from output slot 5 of node 4 (CheckpointLoaderSimple), which has 3 outputs",
		},
		{
			name: "output lists unknown link",
			data: edit(t, sd15, func(d map[string]any) {
				o := nodeByID(d, 5)["outputs"].([]any)[0].(map[string]any)
				o["links"] = []any{2, 42}
			}),
			valErr: "node 5 output slot 0 lists link 42, which is not in the links table",
		},
		{
			name:   "last_link_id too small",
			data:   edit(t, sd15, func(d map[string]any) { d["last_link_id"] = 3 }),
			valErr: "last_link_id is 3 but link 15 exists",
		},
		{
			name:     "api ref to missing node",
			data:     bytes.Replace(api, []byte(`"model": ["4", 0]`), []byte(`"model": ["40", 0]`), 1),
			stackErr: `w.json: node "11" input "model" refers to node "40", which does not exist`,
			valErr:   `node "11" input "model" refers to node "40", which does not exist`,
		},
		{
			name:     "api slot out of range",
			data:     bytes.Replace(api, []byte(`"model": ["11", 0]`), []byte(`"model": ["11", 2]`), 1),
			stackErr: `w.json: node "3" input "model" refers to output slot 2 of node 11 (LoraLoader), which has 2 outputs`,
			valErr:   `node "3" input "model" refers to output slot 2 of node 11 (LoraLoader), which has 2 outputs`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Parse(tc.data, "w.json")
			checkErr(t, "Parse", err, tc.parseErr)
			if tc.parseErr != "" {
				checkErr(t, "Validate", Validate(tc.data), strings.TrimPrefix(tc.parseErr, "w.json: "))
				return
			}
			_, err = w.Stacks()
			checkErr(t, "Stacks", err, tc.stackErr)
			checkErr(t, "Validate", Validate(tc.data), tc.valErr)
			if tc.valErr != "" {
				err := w.Bake(Stack{SamplerID: "3"}, "new.safetensors", filepath.Join(t.TempDir(), "out.json"))
				if err == nil {
					t.Error("Bake of an invalid workflow succeeded")
				}
			}
		})
	}
}

func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to contain %q", what, err, want)
	case err != nil && strings.Contains(err.Error(), "\n"):
		t.Errorf("%s: error spans lines: %q", what, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.json")
	if err == nil || err.Error() != "testdata/nope.json: no such file or directory" {
		t.Errorf("err = %v", err)
	}
}

// TestRoundTrip checks that an untouched tree re-encodes byte for byte.
func TestRoundTrip(t *testing.T) {
	for _, f := range []string{sd15File, fluxFile, sd15API} {
		data := readFile(t, f)
		w, err := Parse(data, f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := marshal(w.root, w.style)
		if err != nil {
			t.Fatal(err)
		}
		if f != sd15API && !bytes.Equal(out, data) {
			t.Errorf("%s: re-encoding changed the file", f)
		}
		if err := Validate(out); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
