package workflow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// generic decodes JSON for assertions.
func generic(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// uiSource returns "node/slot" feeding the named input of a UI node.
func uiSource(doc map[string]any, node float64, input string) string {
	n := nodeByID(doc, node)
	if n == nil {
		return "no node"
	}
	for _, in := range n["inputs"].([]any) {
		m := in.(map[string]any)
		if m["name"] != input {
			continue
		}
		id, ok := m["link"].(float64)
		if !ok {
			return "unconnected"
		}
		if r := linkRow(doc, id); r != nil {
			b, _ := json.Marshal([]any{r[1], r[2]})
			return string(b)
		}
		return "missing link"
	}
	return "no input"
}

// apiSourceOf returns the [id, slot] reference of an API input as JSON.
func apiSourceOf(doc map[string]any, node, input string) string {
	n, ok := doc[node].(map[string]any)
	if !ok {
		return "no node"
	}
	b, _ := json.Marshal(n["inputs"].(map[string]any)[input])
	return string(b)
}

func TestBake(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		sampler string
		newBase string
		check   func(t *testing.T, doc map[string]any)
	}{
		{"sd15 example", readFile(t, sd15File), "3", "sd15-dpo.safetensors", func(t *testing.T, doc map[string]any) {
			if nodeByID(doc, 11) != nil {
				t.Error("LoRA node 11 still present")
			}
			for _, c := range []struct {
				node  float64
				input string
				want  string
			}{{3, "model", "[4,0]"}, {6, "clip", "[4,1]"}, {7, "clip", "[4,1]"}} {
				if got := uiSource(doc, c.node, c.input); got != c.want {
					t.Errorf("node %v %s from %s, want %s", c.node, c.input, got, c.want)
				}
			}
			if got := nodeByID(doc, 4)["widgets_values"]; !reflect.DeepEqual(got, []any{"sd15-dpo.safetensors"}) {
				t.Errorf("loader widgets = %v", got)
			}
			if got := nodeByID(doc, 4)["type"]; got != "CheckpointLoaderSimple" {
				t.Errorf("loader type = %v", got)
			}
			if linkRow(doc, 11) != nil || linkRow(doc, 15) != nil || len(doc["links"].([]any)) != 9 {
				t.Errorf("links = %v", doc["links"])
			}
			outs := nodeByID(doc, 4)["outputs"].([]any)
			if got := outs[0].(map[string]any)["links"]; !reflect.DeepEqual(got, []any{12.0}) {
				t.Errorf("MODEL links = %v", got)
			}
			if got := outs[1].(map[string]any)["links"]; !reflect.DeepEqual(got, []any{13.0, 14.0}) {
				t.Errorf("CLIP links = %v", got)
			}
			extra := doc["extra"].(map[string]any)
			if doc["id"] != "8b9f7796-0873-4025-be3c-0f997f67f866" || doc["version"] != 0.4 || extra["frontendVersion"] != "1.34.6" ||
				extra["VHS_KeepIntermediate"] != true || doc["last_link_id"] != 15.0 || doc["groups"] == nil || doc["config"] == nil {
				t.Errorf("top-level fields not preserved: %v", doc)
			}
		}},
		{"flux example", readFile(t, fluxFile), "31", `Flux\flux1-dev-fp8-awportrait.safetensors`, func(t *testing.T, doc map[string]any) {
			if nodeByID(doc, 44) != nil {
				t.Error("LoRA node 44 still present")
			}
			if got := uiSource(doc, 31, "model"); got != "[41,0]" {
				t.Errorf("sampler model from %s", got)
			}
			n := nodeByID(doc, 41)
			if n["type"] != "UNETLoader" || !reflect.DeepEqual(n["widgets_values"], []any{`Flux\flux1-dev-fp8-awportrait.safetensors`, "default"}) {
				t.Errorf("loader = %v %v", n["type"], n["widgets_values"])
			}
			if uiSource(doc, 6, "clip") != "[42,0]" {
				t.Error("clip wiring changed")
			}
		}},
		{"sd15 api", readFile(t, sd15API), "3", "sd15-dpo.safetensors", func(t *testing.T, doc map[string]any) {
			if _, ok := doc["11"]; ok {
				t.Error("LoRA node 11 still present")
			}
			for _, c := range [][3]string{{"3", "model", `["4",0]`}, {"6", "clip", `["4",1]`}, {"7", "clip", `["4",1]`}, {"4", "ckpt_name", `"sd15-dpo.safetensors"`}} {
				if got := apiSourceOf(doc, c[0], c[1]); got != c[2] {
					t.Errorf("node %s %s = %s, want %s", c[0], c[1], got, c[2])
				}
			}
			if doc["3"].(map[string]any)["_meta"] == nil {
				t.Error("_meta lost")
			}
		}},
		{"three loras keeps bypassed and muted", threeLoRAs(t), "6", "sd15-a.safetensors", func(t *testing.T, doc map[string]any) {
			if nodeByID(doc, 2) != nil {
				t.Error("active LoRA 2 still present")
			}
			if nodeByID(doc, 3)["mode"] != 4.0 || nodeByID(doc, 4)["mode"] != 2.0 {
				t.Error("bypassed/muted LoRAs changed")
			}
			if uiSource(doc, 3, "model") != "[1,0]" || uiSource(doc, 3, "clip") != "[1,1]" || uiSource(doc, 6, "model") != "[5,0]" {
				t.Error("wiring around removed LoRA wrong")
			}
			if doc["extra"].(map[string]any)["custom_tool"] == nil {
				t.Error("extra lost")
			}
		}},
		{"two samplers, the shared LoRA", twoSamplers(t), "3", "base-x.safetensors", func(t *testing.T, doc map[string]any) {
			if uiSource(doc, 3, "model") != "[1,0]" || uiSource(doc, 4, "model") != "[1,0]" || uiSource(doc, 6, "clip") != "[1,1]" {
				t.Error("consumers of LoRA 2 not rewired to the loader")
			}
		}},
		{"flux custom, LoRA clip strength 0", fluxCustom(t, 0), "6", "flux-f.safetensors", func(t *testing.T, doc map[string]any) {
			if uiSource(doc, 4, "model") != "[1,0]" || uiSource(doc, 7, "clip") != "[3,0]" {
				t.Error("wiring wrong")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Parse(tc.data, "in.json")
			if err != nil {
				t.Fatal(err)
			}
			stacks, err := w.Stacks()
			if err != nil {
				t.Fatal(err)
			}
			var st Stack
			for _, s := range stacks {
				if s.SamplerID == tc.sampler {
					st = s
				}
			}
			dir := t.TempDir()
			out := filepath.Join(dir, "out.json")
			if err := w.Bake(st, tc.newBase, out); err != nil {
				t.Fatal(err)
			}
			data := readFile(t, out)
			if err := Validate(data); err != nil {
				t.Fatalf("baked workflow invalid: %v", err)
			}
			tc.check(t, generic(t, data))

			// The result reads back as the sampler on the new base with
			// only the unbaked LoRAs left.
			w2, err := Parse(data, "out.json")
			if err != nil {
				t.Fatal(err)
			}
			stacks2, err := w2.Stacks()
			if err != nil {
				t.Fatal(err)
			}
			for _, s2 := range stacks2 {
				if s2.SamplerID != tc.sampler {
					continue
				}
				if s2.Base.Name != tc.newBase || s2.Base.NodeID != st.Base.NodeID {
					t.Errorf("new base = %+v", s2.Base)
				}
				for _, l := range s2.LoRAs {
					if l.Mode == "active" {
						t.Errorf("active LoRA %s left", l.NodeID)
					}
				}
			}
			// Nothing but the output in the directory; w itself unchanged.
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("directory holds %d entries", len(ents))
			}
			if again, _ := w.Stacks(); !reflect.DeepEqual(again, stacks) {
				t.Error("Bake changed the Workflow")
			}
		})
	}
}

func TestBakeRefuses(t *testing.T) {
	stackOf := func(t *testing.T, data []byte, sampler string) (*Workflow, Stack) {
		w, err := Parse(data, "in.json")
		if err != nil {
			t.Fatal(err)
		}
		stacks, err := w.Stacks()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stacks {
			if s.SamplerID == sampler {
				return w, s
			}
		}
		return w, Stack{SamplerID: sampler}
	}
	tests := []struct {
		name    string
		data    []byte
		sampler string
		newBase string
		mutate  func(*Stack)
		want    string
	}{
		{"other sampler lacks the LoRA", twoSamplers(t), "5", "b.safetensors", nil,
			"in.json: cannot bake sampler 5: sampler 3 also uses base node 1 but not LoRA node 4, so it would change"},
		{"clip lora on a diffusion model", fluxCustom(t, 1), "6", "f.safetensors", nil,
			"LoRA node 2 also changes the text encoder (non-zero strength_clip), which a diffusion-model base (UNETLoader) cannot carry"},
		{"stale stack", readFile(t, sd15File), "3", "n.safetensors", func(s *Stack) { s.LoRAs = nil },
			"the given stack does not match the workflow"},
		{"unknown sampler", readFile(t, sd15File), "99", "n.safetensors", nil, "cannot bake sampler 99: no such sampler"},
		{"empty name", readFile(t, sd15File), "3", " ", nil, "invalid new base name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, st := stackOf(t, tc.data, tc.sampler)
			if tc.mutate != nil {
				tc.mutate(&st)
			}
			out := filepath.Join(t.TempDir(), "out.json")
			err := w.Bake(st, tc.newBase, out)
			checkErr(t, "Bake", err, tc.want)
			if _, serr := os.Stat(out); serr == nil {
				t.Error("output written despite the error")
			}
		})
	}
}

func TestBakeOverwritesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.json")
	if err := os.WriteFile(path, readFile(t, sd15File), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	stacks, err := w.Stacks()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Bake(stacks[0], "merged.safetensors", path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode())
	}
	data := readFile(t, path)
	if !strings.Contains(string(data), "\n  \"nodes\": [\n    {\n") {
		t.Error("indentation style not kept")
	}
	if err := w.Bake(stacks[0], "x.safetensors", filepath.Join(path, "sub.json")); err == nil {
		t.Error("writing below a file succeeded")
	}
}
