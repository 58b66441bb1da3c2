package arch

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Shared test helpers for flux1, chroma, flux2, sd3 and auraflow (prefix mm).

// mmView is the registry's MapView (name → shape).
type mmView = MapView

func mmArch(t *testing.T, id string) *Arch {
	t.Helper()
	a, ok := ByID(id)
	if !ok {
		t.Fatalf("%s not registered", id)
	}
	return a
}

func mmShared(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not available", p)
	}
	return p
}

type mmListing struct {
	Keys   []string           `json:"keys"`
	Shapes map[string][]int64 `json:"shapes"`
}

func mmLoad(t *testing.T, rel string) mmListing {
	t.Helper()
	b, err := os.ReadFile(mmShared(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var l mmListing
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// mmHeader reads a safetensors header (8-byte little-endian length + JSON).
func mmHeader(t *testing.T, rel string) mmListing {
	t.Helper()
	f, err := os.Open(mmShared(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := f.Read(buf); err != nil {
		t.Fatal(err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(buf, &h); err != nil {
		t.Fatal(err)
	}
	l := mmListing{Shapes: map[string][]int64{}}
	for k, raw := range h {
		if k == "__metadata__" {
			continue
		}
		var info struct {
			Shape []int64 `json:"shape"`
		}
		if err := json.Unmarshal(raw, &info); err != nil {
			t.Fatal(err)
		}
		l.Keys = append(l.Keys, k)
		l.Shapes[k] = info.Shape
	}
	sort.Strings(l.Keys)
	return l
}

// mmTarget is what a module name resolves to in the test's own lookup.
type mmTarget struct {
	module string
	shape  []int64 // the module's main parameter (weight, scale or raw)
	slice  *Slice
}

func (x mmTarget) rows() int64 {
	if x.slice != nil {
		return x.slice.Size
	}
	return x.shape[0]
}

func (x mmTarget) cols() int64 {
	n := int64(1)
	for _, d := range x.shape[1:] {
		n *= d
	}
	return n
}

// mmLookup indexes an architecture's Full modules and aliases, dotted and
// flattened ("." → "_").
type mmLookup struct {
	dotted, flat map[string]mmTarget
	params       map[string][]int64
}

func mmIndex(a *Arch) mmLookup {
	lk := mmLookup{dotted: map[string]mmTarget{}, flat: map[string]mmTarget{}, params: map[string][]int64{}}
	mods := map[string][]int64{}
	for _, p := range a.Params(Full) {
		lk.params[p.Name] = p.Shape
		mod, suffix, ok := ModuleOf(p.Name)
		if !ok {
			mod = p.Name
		}
		if _, seen := mods[mod]; !seen || suffix != "bias" {
			mods[mod] = p.Shape
		}
	}
	put := func(name string, x mmTarget) {
		lk.dotted[name] = x
		lk.flat[strings.ReplaceAll(name, ".", "_")] = x
	}
	for m, s := range mods {
		put(m, mmTarget{module: m, shape: s})
	}
	for _, al := range a.Aliases() {
		if s, ok := mods[al.Target]; ok {
			if _, native := mods[al.Name]; !native {
				put(al.Name, mmTarget{module: al.Target, shape: s, slice: al.Slice})
			}
		}
	}
	return lk
}

var (
	mmOFT   = regexp.MustCompile(`\.oft_blocks(\.\d+)?$`)
	mmLoRAs = []struct{ suffix, kind string }{
		{".lora_A.weight", "A"}, {".lora_B.weight", "B"}, {".lora_B.bias", "Bbias"},
		{".lora_down.weight", "A"}, {".lora_up.weight", "B"},
		{".lora.down.weight", "A"}, {".lora.up.weight", "B"},
		{".alpha", ""}, {".diff_b", ""}, {".diff", ""}, {".dora_scale", ""},
		{".lokr_w1", ""}, {".lokr_w2", ""}, {".lokr_w1_a", ""}, {".lokr_w1_b", ""},
		{".lokr_w2_a", ""}, {".lokr_w2_b", ""}, {".set_weight", "whole"},
	}
)

// mmSplit strips a LoRA tensor name down to its module; kind says which
// factor it is ("A" columns, "B" rows, "Bbias", "whole" = a stored
// parameter, "" = no shape check). flat is true for underscore forms.
func mmSplit(key string) (module, kind string, flat bool) {
	module, kind = key, "whole"
	if m := mmOFT.FindStringIndex(key); m != nil {
		module, kind = key[:m[0]], ""
	} else {
		for _, s := range mmLoRAs {
			if rest, ok := strings.CutSuffix(key, s.suffix); ok {
				module, kind = rest, s.kind
				break
			}
		}
	}
	for _, p := range []string{"lora_unet_", "lora_transformer_", "oft_unet_", "lycoris_"} {
		if rest, ok := strings.CutPrefix(module, p); ok {
			return rest, kind, true
		}
	}
	for _, p := range []string{"diffusion_model.", "transformer."} {
		if rest, ok := strings.CutPrefix(module, p); ok {
			return rest, kind, false
		}
	}
	return module, kind, false
}

// mmCheckListing verifies that every diffusion-model module of a LoRA key
// listing resolves against a's Params/Aliases and that LoRA factor shapes
// fit. expandIn lists modules whose input width may be a multiple of the
// base's (control LoRAs that widen img_in).
func mmCheckListing(t *testing.T, a *Arch, l mmListing, expandIn ...string) {
	t.Helper()
	lk := mmIndex(a)
	n := 0
	for _, k := range l.Keys {
		if strings.HasPrefix(k, "lora_te") || strings.HasPrefix(k, "text_encoder") {
			continue
		}
		mod, kind, flat := mmSplit(k)
		var x mmTarget
		var ok bool
		if kind == "whole" {
			// a bare parameter (norm scale stored whole)
			if s, isParam := lk.params[mod]; isParam {
				if sh, has := l.Shapes[k]; has && !reflect.DeepEqual(sh, s) {
					t.Errorf("%s: shape %v, parameter %v", k, sh, s)
				}
				n++
				continue
			}
			m, _, _ := ModuleOf(mod)
			x, ok = lk.dotted[m]
		} else if flat {
			x, ok = lk.flat[mod]
		} else {
			x, ok = lk.dotted[mod]
		}
		if !ok {
			t.Errorf("%s: module %q not found in %s", k, mod, a.ID)
			continue
		}
		n++
		sh, has := l.Shapes[k]
		if !has || len(sh) == 0 {
			continue
		}
		switch kind {
		case "B":
			if sh[0] != x.rows() {
				t.Errorf("%s: rows %d, %s has %d", k, sh[0], x.module, x.rows())
			}
		case "Bbias":
			if sh[0] != x.rows() {
				t.Errorf("%s: bias rows %d, %s has %d", k, sh[0], x.module, x.rows())
			}
		case "A":
			c := sh[len(sh)-1]
			if len(sh) > 2 {
				c = 1
				for _, d := range sh[1:] {
					c *= d
				}
			}
			expand := false
			for _, e := range expandIn {
				expand = expand || x.module == e
			}
			if c != x.cols() && !(expand && c > x.cols() && c%x.cols() == 0) {
				t.Errorf("%s: columns %d, %s has %d", k, c, x.module, x.cols())
			}
		}
	}
	if n == 0 {
		t.Errorf("no diffusion-model keys checked")
	}
}

type mmShapeCase struct {
	name  string
	shape []int64
}

// mmCheckParams checks the parameter count against a published size, a
// table of exact shapes, unique names and that Tiny has Full's names.
func mmCheckParams(t *testing.T, id string, published int64, tolPc float64, cases []mmShapeCase) {
	t.Helper()
	a := mmArch(t, id)
	full := a.Params(Full)
	v := ParamsView(full)
	if len(v) != len(full) {
		t.Errorf("%s: duplicate parameter names", id)
	}
	n := NumParams(full)
	diff := float64(n-published) / float64(published) * 100
	if diff < -tolPc || diff > tolPc {
		t.Errorf("%s: %d parameters, published %d (%.2f%%)", id, n, published, diff)
	}
	t.Logf("%s: %d tensors, %d parameters", id, len(full), n)
	for _, c := range cases {
		if got := v.Shape(c.name); !reflect.DeepEqual(got, c.shape) {
			t.Errorf("%s: %s = %v, want %v", id, c.name, got, c.shape)
		}
	}
	tiny := a.Params(Tiny)
	if len(tiny) != len(full) {
		t.Fatalf("%s: Tiny has %d tensors, Full %d", id, len(tiny), len(full))
	}
	for i := range full {
		if tiny[i].Name != full[i].Name || len(tiny[i].Shape) != len(full[i].Shape) {
			t.Errorf("%s: Tiny %s %v vs Full %s %v", id, tiny[i].Name, tiny[i].Shape, full[i].Name, full[i].Shape)
		}
	}
	if b := NumParams(tiny) * 4; b > 16<<20 {
		t.Errorf("%s: Tiny is %d bytes in fp32", id, b)
	}
}

// mmCheckAliases: every alias target exists, slices lie inside the rows,
// swapped targets have an even row count, names are unique and Tiny slices
// scale with the rows (offset and size proportional).
func mmCheckAliases(t *testing.T, id string) {
	t.Helper()
	a := mmArch(t, id)
	fullPs := a.Params(Full)
	// variant-only parameters (SD3.5 Medium's attn2) are alias targets too
	full, tiny := ParamsView(append(fullPs, a.variantOnlyParams(fullPs)...)), ParamsView(a.Params(Tiny))
	main := func(v mmView, mod string) []int64 {
		for _, s := range []string{".weight", ".scale", ""} {
			if sh, ok := v[mod+s]; ok {
				return sh
			}
		}
		return nil
	}
	seen := map[string]bool{}
	for _, al := range a.Aliases() {
		if seen[al.Name] {
			t.Errorf("%s: alias %s twice", id, al.Name)
		}
		seen[al.Name] = true
		sh := main(full, al.Target)
		if sh == nil {
			t.Errorf("%s: alias %s → %s: no such parameter", id, al.Name, al.Target)
			continue
		}
		if al.Slice != nil {
			if al.Slice.Offset < 0 || al.Slice.Size <= 0 || al.Slice.Offset+al.Slice.Size > sh[0] {
				t.Errorf("%s: alias %s slice %+v outside %v", id, al.Name, *al.Slice, sh)
			}
			ts := main(tiny, al.Target)
			if ts == nil {
				continue // a variant-only parameter: no Tiny table
			}
			if (al.Slice.Offset*ts[0])%sh[0] != 0 || (al.Slice.Size*ts[0])%sh[0] != 0 {
				t.Errorf("%s: alias %s slice does not scale to Tiny rows %d", id, al.Name, ts[0])
			}
		}
		if al.SwapScaleShift && sh[0]%2 != 0 {
			t.Errorf("%s: alias %s swaps halves of odd rows %v", id, al.Name, sh)
		}
	}
}

// mmCheckDetect: Detect is true on Full and Tiny of its own architecture
// with evidence containing want, false on every other architecture.
func mmCheckDetect(t *testing.T, id, want string) {
	t.Helper()
	a := mmArch(t, id)
	for _, s := range []Size{Full, Tiny} {
		ok, ev := a.Detect(ParamsView(a.Params(s)))
		if !ok || !strings.Contains(ev, want) {
			t.Errorf("%s size %d: Detect = %v %q, want %q", id, s, ok, ev, want)
		}
	}
	for _, b := range All() {
		if b.ID == id || b.Params == nil {
			continue
		}
		for _, s := range []Size{Full, Tiny} {
			if ok, ev := a.Detect(ParamsView(b.Params(s))); ok {
				t.Errorf("%s.Detect true on %s (size %d): %s", id, b.ID, s, ev)
			}
			if b.Detect == nil {
				continue
			}
			if ok, ev := b.Detect(ParamsView(a.Params(s))); ok {
				t.Logf("note: %s.Detect also claims %s (size %d): %s", b.ID, id, s, ev)
			}
		}
	}
}

// mmVariant copies a view, applying edits: a nil shape deletes the key.
func mmVariant(v mmView, edits map[string][]int64) mmView { return v.edited(edits) }

func mmWithout(v mmView, prefixes ...string) mmView {
	out := mmView{}
	for k, s := range v {
		drop := false
		for _, p := range prefixes {
			drop = drop || strings.HasPrefix(k, p)
		}
		if !drop {
			out[k] = s
		}
	}
	return out
}

// ---- flux1 ----

func TestFlux1Params(t *testing.T) {
	mmCheckParams(t, "flux1", 11_901_408_320, 1, []mmShapeCase{
		{"img_in.weight", []int64{3072, 64}},
		{"img_in.bias", []int64{3072}},
		{"time_in.in_layer.weight", []int64{3072, 256}},
		{"vector_in.in_layer.weight", []int64{3072, 768}},
		{"guidance_in.out_layer.weight", []int64{3072, 3072}},
		{"txt_in.weight", []int64{3072, 4096}},
		{"double_blocks.0.img_attn.qkv.weight", []int64{9216, 3072}},
		{"double_blocks.0.img_attn.qkv.bias", []int64{9216}},
		{"double_blocks.18.txt_attn.norm.key_norm.scale", []int64{128}},
		{"double_blocks.0.img_mod.lin.weight", []int64{18432, 3072}},
		{"double_blocks.0.txt_mlp.0.weight", []int64{12288, 3072}},
		{"double_blocks.0.txt_mlp.2.weight", []int64{3072, 12288}},
		{"single_blocks.0.linear1.weight", []int64{21504, 3072}},
		{"single_blocks.37.linear2.weight", []int64{3072, 15360}},
		{"single_blocks.37.modulation.lin.weight", []int64{9216, 3072}},
		{"single_blocks.0.norm.query_norm.scale", []int64{128}},
		{"final_layer.linear.weight", []int64{64, 3072}},
		{"final_layer.adaLN_modulation.1.weight", []int64{6144, 3072}},
	})
	a := mmArch(t, "flux1")
	if n := len(a.Params(Full)); n != 780 {
		t.Errorf("flux1: %d tensors, want 780 (flux1-dev.safetensors)", n)
	}
}

func TestFlux1Aliases(t *testing.T) { mmCheckAliases(t, "flux1") }

func TestFlux1Detect(t *testing.T) {
	mmCheckDetect(t, "flux1", "FLUX.1-dev/Kontext")
	a := mmArch(t, "flux1")
	full := ParamsView(a.Params(Full))
	for _, c := range []struct {
		name string
		v    mmView
		want string
	}{
		{"schnell", mmWithout(full, "guidance_in."), ": FLUX.1-schnell"},
		{"fill", mmVariant(full, map[string][]int64{"img_in.weight": {3072, 384}}), "FLUX.1-Fill (inpaint, in_channels 96)"},
		{"depth", mmVariant(full, map[string][]int64{"img_in.weight": {3072, 128}}), "FLUX.1-Canny/Depth (in_channels 32)"},
	} {
		ok, ev := a.Detect(c.v)
		if !ok || !strings.HasSuffix(ev, c.want) {
			t.Errorf("%s: %v %q, want suffix %q", c.name, ok, ev, c.want)
		}
	}
	ok, ev := a.Detect(full)
	if want := "double_blocks.0.img_attn.norm.key_norm.scale + img_in.weight [3072 64] + guidance_in.in_layer.weight: FLUX.1-dev/Kontext"; !ok || ev != want {
		t.Errorf("evidence %q, want %q", ev, want)
	}
	// HunyuanVideo reuses the Flux double block but has a 3-D img_in.proj
	hv := mmWithout(full, "img_in.")
	hv["img_in.proj.weight"] = []int64{3072, 16, 1, 2, 2}
	if ok, ev := a.Detect(hv); ok {
		t.Errorf("HunyuanVideo-like keys detected as flux1: %s", ev)
	}
}

func TestFlux1CorpusListings(t *testing.T) {
	a := mmArch(t, "flux1")
	for _, rel := range []string{
		"corpus/keys/aitoolkit-flux-1.json",
		"corpus/keys/bfl-flux-control-lora-1.json",
		"corpus/keys/diffusers-flux-1.json",
		"corpus/keys/diffusers-flux-2.json",
		"corpus/keys/diffusers-flux-loradot-1.json",
		"corpus/keys/kohya-flux-1.json",
		"corpus/keys/kohya-flux-te1-1.json",
		"corpus/keys/kohya-flux-oft-1.json",
		"corpus/keys/onetrainer-flux-dora-1.json",
		"corpus/keys-samples/sample-lokr-flux-bfl-1.json",
	} {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			mmCheckListing(t, a, mmLoad(t, rel), "img_in")
		})
	}
	t.Run("leighwoods", func(t *testing.T) {
		l := mmHeader(t, "corpus/files/diffusers-flux-partial-r16_leighwoods.safetensors")
		if len(l.Keys) != 8 {
			t.Errorf("%d tensors, want 8", len(l.Keys))
		}
		mmCheckListing(t, a, l)
	})
}

// TestFlux1ControlNetNames: the InstantX Flux ControlNet is stored in
// diffusers naming; every transformer module of it must be an alias, with
// shapes that fit (controlnet_* modules are ControlNet-only).
func TestFlux1ControlNetNames(t *testing.T) {
	l := mmLoad(t, "corpus/checkpoint-keys/flux-controlnet-instantx.json")
	lk := mmIndex(mmArch(t, "flux1"))
	n := 0
	for _, k := range l.Keys {
		if strings.HasPrefix(k, "controlnet_") {
			continue
		}
		mod, suffix, _ := ModuleOf(k)
		x, ok := lk.dotted[mod]
		if !ok {
			t.Errorf("%s: no alias", k)
			continue
		}
		n++
		sh := l.Shapes[k]
		if sh[0] != x.rows() {
			t.Errorf("%s %v: rows %d expected", k, sh, x.rows())
		}
		if suffix == "weight" && len(sh) == 2 && sh[1] != x.cols() {
			t.Errorf("%s %v: columns %d expected", k, sh, x.cols())
		}
	}
	if n < 300 {
		t.Errorf("only %d tensors checked", n)
	}
}
