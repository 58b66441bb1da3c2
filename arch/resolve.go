package arch

import (
	"sort"
	"strings"
	"sync"
)

// Component names the root a resolved module lives under: the diffusion
// model, or a text encoder by its ComfyUI name.
const DiffusionModel = "diffusion_model"

// Target is a LoRA module resolved onto a model parameter.
type Target struct {
	Arch      *Arch
	Part      Part   // unet / dit, or the text encoder's part
	Component string // DiffusionModel or the encoder's Comfy name ("clip_l", ...)
	Module    string // native module path
	Param     string // native parameter the module patches (Module+".weight", ".scale", or a raw parameter)
	Shape     []int64
	Slice     *Slice
	// SwapScaleShift: the delta's two halves along dim 0 are swapped
	// before it is added (diffusers norm_out ↔ native adaLN).
	SwapScaleShift bool
	// Convention names how the LoRA addressed the module ("kohya",
	// "comfy", "diffusers", "peft", ...); Foreign is true when it used a
	// diffusers/alias name rather than the native one.
	Convention string
	Foreign    bool
}

// Rows is the number of rows the module's delta has: the slice size or the
// parameter's first dimension.
func (t Target) Rows() int64 {
	if t.Slice != nil {
		return t.Slice.Size
	}
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[0]
}

// Cols is the parameter's element count per row.
func (t Target) Cols() int64 {
	n := int64(1)
	for _, d := range t.Shape[min(1, len(t.Shape)):] {
		n *= d
	}
	return n
}

type entry struct {
	module, param string
	shape         []int64
	slice         *Slice
	swap, foreign bool
	ambiguous     bool
}

type nameIndex struct {
	dotted map[string]*entry
	flat   map[string]*entry
	// raw addresses every parameter that is not a ".weight" by its full
	// name (norm "X.scale", "X.bias", Wan's "blocks.N.modulation"), the
	// way ComfyUI's key map lets "diffusion_model.<param>" address it.
	raw map[string]*entry
	lax bool // no table: accept any name (LLM encoders)
}

func (ix *nameIndex) put(name string, e *entry) {
	if old, ok := ix.dotted[name]; !ok || (old.foreign && !e.foreign) {
		ix.dotted[name] = e
	}
	flat := strings.ReplaceAll(name, ".", "_")
	if old, ok := ix.flat[flat]; ok && (old.module != e.module || !sameSlice(old.slice, e.slice)) {
		if old.foreign == e.foreign {
			ix.flat[flat] = &entry{ambiguous: true}
		} else if old.foreign {
			ix.flat[flat] = e
		}
		return
	}
	ix.flat[flat] = e
}

func sameSlice(a, b *Slice) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// buildIndex indexes modules (parameter names without .weight) and
// aliases by name, and every other parameter by its full name (raw). As in
// ComfyUI's key map, a module path addresses a parameter only through its
// ".weight": "X.query_norm" is not a name for "X.query_norm.scale" (the
// foreign aliases of such parameters, e.g. diffusers' attn.norm_q, are).
func buildIndex(params []Param, aliases []Alias) *nameIndex {
	ix := &nameIndex{dotted: map[string]*entry{}, flat: map[string]*entry{}, raw: map[string]*entry{}}
	byModule := map[string]*entry{}
	var order []string
	for _, p := range params {
		mod, suffix, ok := ModuleOf(p.Name)
		if !ok {
			mod = p.Name
		}
		e := byModule[mod]
		if e == nil {
			e = &entry{module: mod}
			byModule[mod] = e
			order = append(order, mod)
		}
		// prefer the weight, then a norm scale, then a raw parameter; a bias
		// only when nothing else exists
		rank := map[string]int{"weight": 0, "scale": 1, "": 2, "bias": 3}[suffix]
		if e.param == "" || rank < paramRank(e.param) {
			e.param, e.shape = p.Name, p.Shape
		}
		if suffix != "weight" {
			ix.raw[p.Name] = &entry{module: mod, param: p.Name, shape: p.Shape}
		}
	}
	for _, m := range order {
		if e := byModule[m]; strings.HasSuffix(e.param, ".weight") {
			ix.put(m, e)
		}
	}
	for _, a := range aliases {
		base := byModule[a.Target]
		if base == nil {
			continue
		}
		e := *base
		e.slice, e.swap, e.foreign = a.Slice, a.SwapScaleShift, true
		if _, native := byModule[a.Name]; native {
			continue
		}
		ix.put(a.Name, &e)
	}
	return ix
}

func paramRank(name string) int {
	switch {
	case strings.HasSuffix(name, ".weight"):
		return 0
	case strings.HasSuffix(name, ".scale"):
		return 1
	case strings.HasSuffix(name, ".bias"):
		return 3
	}
	return 2
}

type archIndex struct {
	dm  *nameIndex
	enc []*nameIndex
	// dotted prefixes per encoder: comfy forms then diffusers forms
	encDotted [][]string
}

var (
	indexMu sync.Mutex
	indexes = map[*Arch]*archIndex{}
)

func (a *Arch) index() *archIndex {
	indexMu.Lock()
	defer indexMu.Unlock()
	if ix, ok := indexes[a]; ok {
		return ix
	}
	var aliases []Alias
	if a.Aliases != nil {
		aliases = a.Aliases()
	}
	full := a.Params(Full)
	ix := &archIndex{dm: buildIndex(append(full, a.variantOnlyParams(full)...), aliases)}
	for _, e := range a.Encoders {
		ix.encDotted = append(ix.encDotted, append([]string{"text_encoders." + e.Comfy + ".transformer.", "text_encoders." + e.Comfy + "."}, e.Diffusers...))
	}
	for _, e := range a.Encoders {
		if e.Model == nil {
			ix.enc = append(ix.enc, &nameIndex{lax: true})
			continue
		}
		ix.enc = append(ix.enc, buildIndex(e.Model(Full), nil))
	}
	indexes[a] = ix
	return ix
}

// Diffusion-model prefix conventions, longest first within each style.
var (
	flatDMPrefixes = []struct{ prefix, convention string }{
		{"lora_unet_unet_", "kohya-over-diffusers"},
		{"lora_transformer_", "onetrainer"},
		{"lora_prior_unet_", "kohya"},
		{"lora_unet_", "kohya"},
		{"lycoris_", "lycoris"},
		{"oft_unet_", "kohya"},
	}
	dottedDMPrefixes = []struct{ prefix, convention string }{
		{"transformer.base_model.model.", "peft"},
		{"unet.base_model.model.", "peft"},
		{"base_model.model.transformer.", "peft"},
		{"base_model.model.", "peft"},
		{"model.diffusion_model.", "comfy"},
		{"diffusion_model.", "comfy"},
		{"transformer.", "diffusers"},
		{"unet.", "diffusers"},
		{"", "bare"},
	}
)

// Resolve maps a LoRA module prefix (a tensor name with its adapter suffix
// removed) onto a parameter of this architecture, trying every naming
// convention ComfyUI and the trainers use. The second result is false when
// nothing matches.
func (a *Arch) Resolve(prefix string) (Target, bool) {
	ix := a.index()
	mk := func(e *entry, part Part, comp, conv string) (Target, bool) {
		if e == nil || e.ambiguous {
			return Target{}, false
		}
		return Target{Arch: a, Part: part, Component: comp, Module: e.module, Param: e.param, Shape: e.shape,
			Slice: e.slice, SwapScaleShift: e.swap, Convention: conv, Foreign: e.foreign}, true
	}
	// text encoders first: their prefixes are the most specific
	for i, enc := range a.Encoders {
		eix := ix.enc[i]
		for _, kp := range enc.Kohya {
			if rest, ok := strings.CutPrefix(prefix, kp); ok {
				if eix.lax {
					return Target{Arch: a, Part: enc.Part, Component: enc.Comfy, Module: rest, Convention: "kohya"}, true
				}
				if t, ok := mk(eix.flat[rest], enc.Part, enc.Comfy, "kohya"); ok {
					return t, true
				}
			}
		}
		if !eix.lax {
			if t, ok := comfyCLIPPrefixes(a, &a.Encoders[i], eix, prefix); ok {
				return t, true
			}
		}
		for _, dp := range ix.encDotted[i] {
			if rest, ok := strings.CutPrefix(prefix, dp); ok {
				conv := "comfy"
				if !strings.HasPrefix(dp, "text_encoders.") {
					conv = "diffusers"
				}
				if eix.lax {
					return Target{Arch: a, Part: enc.Part, Component: enc.Comfy, Module: rest, Convention: conv}, true
				}
				if t, ok := mk(eix.dotted[rest], enc.Part, enc.Comfy, conv); ok {
					return t, true
				}
			}
		}
	}
	for _, fp := range flatDMPrefixes {
		if rest, ok := strings.CutPrefix(prefix, fp.prefix); ok {
			if t, ok := mk(ix.dm.flat[rest], a.Part, DiffusionModel, fp.convention); ok {
				return t, true
			}
		}
	}
	for _, dp := range dottedDMPrefixes {
		rest, ok := strings.CutPrefix(prefix, dp.prefix)
		if !ok {
			continue
		}
		if t, ok := mk(ix.dm.dotted[rest], a.Part, DiffusionModel, dp.convention); ok {
			return t, true
		}
		if dp.convention == "comfy" || dp.convention == "bare" {
			if t, ok := mk(ix.dm.raw[rest], a.Part, DiffusionModel, dp.convention); ok {
				return t, true
			}
		}
		// legacy diffusers attention processors: "...attn1.processor.to_q",
		// "...processor.to_out" for "...to_out.0"
		if strings.Contains(rest, ".processor.") {
			legacy := strings.Replace(rest, ".processor.", ".", 1)
			if strings.HasSuffix(legacy, ".to_out") {
				legacy += ".0"
			}
			if t, ok := mk(ix.dm.dotted[legacy], a.Part, DiffusionModel, "diffusers-attn-processor"); ok {
				return t, true
			}
		}
	}
	return Target{}, false
}

// NativeParams returns the diffusion model's parameter names (Full size) in
// a set, for checkpoint detection by name.
func (a *Arch) NativeParams() map[string][]int64 {
	m := map[string][]int64{}
	for _, p := range a.Params(Full) {
		m[p.Name] = p.Shape
	}
	return m
}

// Candidate is one architecture's fit to a set of module names.
type Candidate struct {
	Arch             *Arch
	Resolved         int // modules resolved by name
	ShapeFit         int // of those, modules whose shapes are consistent (best variant)
	ShapeKnown       int // modules whose shape could be checked (best variant)
	DiffusionModules int // resolved modules of the diffusion model
	// Variant is the index of the best-fitting variant (-1: the
	// architecture declares none); VariantFit and VariantKnown hold every
	// variant's counts, in Variants() order.
	Variant      int
	VariantFit   []int
	VariantKnown []int
	// Pruned: evaluation stopped once the architecture could no longer
	// match the best candidate; its counts are partial.
	Pruned bool
}

// Rank orders candidates: most modules whose names and shapes both fit,
// then most modules resolved by name, then fewest shape misfits, then
// registry priority. A candidate whose shapes fit therefore always wins
// over one whose names fit but whose shapes don't.
func Rank(cs []Candidate) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.ShapeFit != b.ShapeFit {
			return a.ShapeFit > b.ShapeFit
		}
		if a.Resolved != b.Resolved {
			return a.Resolved > b.Resolved
		}
		if ma, mb := a.ShapeKnown-a.ShapeFit, b.ShapeKnown-b.ShapeFit; ma != mb {
			return ma < mb
		}
		return a.Arch.Priority < b.Arch.Priority
	})
}
