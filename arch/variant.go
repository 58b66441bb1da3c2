package arch

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Variant is one released model of an architecture: its size (hidden
// width, depth) and the modules only it has. Detection compares a file's
// shapes against every variant's table; merge refuses a LoRA made for
// another variant of the same architecture.
type Variant struct {
	Name  string // "SD3.5 Medium"
	Width int64  // hidden width (UNets: model_channels)
	Depth string // "24 joint blocks"
	// Only names the modules that only this variant has ("" when none).
	Only string
	// Source says where the widths and depths were checked (repository,
	// file and commit).
	Source string
	// Params generates the variant's diffusion-model parameters at their
	// real sizes, in native naming.
	Params func() []Param
	// Adds is true when the table has parameters the architecture's Full
	// table lacks (SD3.5 Medium's attn2): only those tables are generated
	// when the name index is built (a test checks the flag).
	Adds bool
}

var (
	variantMu  sync.Mutex
	variantReg = map[string][]Variant{}
	variantTab = map[string][]map[string][]int64{}
)

// registerVariants declares an architecture's variants (from the
// architecture file's init), most common first: among variants that fit a
// file equally well, the first is reported.
func registerVariants(id string, vs ...Variant) {
	variantMu.Lock()
	defer variantMu.Unlock()
	variantReg[id] = append(variantReg[id], vs...)
}

// Variants returns the architecture's declared variants (nil when it has
// none: one size only).
func (a *Arch) Variants() []Variant {
	variantMu.Lock()
	defer variantMu.Unlock()
	return append([]Variant(nil), variantReg[a.ID]...)
}

// VariantNames joins variant names with " / ".
func VariantNames(vs []Variant) string {
	var ns []string
	for _, v := range vs {
		ns = append(ns, v.Name)
	}
	return strings.Join(ns, " / ")
}

// variantShapes returns variant i's parameter shapes by name (cached).
func (a *Arch) variantShapes(i int) map[string][]int64 {
	variantMu.Lock()
	defer variantMu.Unlock()
	vs := variantReg[a.ID]
	if i < 0 || i >= len(vs) {
		return nil
	}
	tabs := variantTab[a.ID]
	if len(tabs) != len(vs) {
		tabs = make([]map[string][]int64, len(vs))
		variantTab[a.ID] = tabs
	}
	if tabs[i] == nil {
		m := map[string][]int64{}
		for _, p := range vs[i].Params() {
			m[p.Name] = p.Shape
		}
		tabs[i] = m
	}
	return tabs[i]
}

// variantOnlyParams lists the parameters some variant has and the Full
// table lacks (SD3.5 Medium's attn2, ...), so that LoRAs addressing them
// resolve by name; their shapes are those of the first variant that has
// them.
func (a *Arch) variantOnlyParams(full []Param) []Param {
	vs := a.Variants()
	adds := false
	for _, v := range vs {
		adds = adds || v.Adds
	}
	if !adds {
		return nil
	}
	have := map[string]bool{}
	for _, p := range full {
		have[p.Name] = true
	}
	var out []Param
	for _, v := range vs {
		if !v.Adds {
			continue
		}
		for _, p := range v.Params() {
			if !have[p.Name] {
				have[p.Name] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// VariantDelta returns the rows and flattened columns target t's weight
// has in variant i (the slice of a fused weight scaled to the variant's
// width); ok is false when the variant has no such parameter.
func (a *Arch) VariantDelta(i int, t Target) (rows, cols int64, ok bool) {
	shapes := a.variantShapes(i)
	s, has := shapes[t.Param]
	if !has || len(s) == 0 {
		return 0, 0, false
	}
	cols = 1
	for _, d := range s[1:] {
		cols *= d
	}
	rows = s[0]
	if t.Slice != nil {
		if len(t.Shape) == 0 {
			return 0, 0, false
		}
		sl, err := ScaleSlice(t.Slice, t.Shape[0], s[0])
		if err != nil {
			return 0, 0, false
		}
		rows = sl.Size
	}
	return rows, cols, true
}

// DetectVariant names the variant a checkpoint's diffusion-model tensors
// (native names, prefix removed) are: the variant all of whose parameters
// are present with their shapes, the largest such table when several are
// (an I2V model also holds every T2V parameter). ok is false when no
// variant's table is complete in the file (fine-tunes with other shapes,
// reduced-size test models).
func (a *Arch) DetectVariant(v View) (idx int, ok bool) {
	best, bestN := -1, 0
	for i := range a.Variants() {
		shapes := a.variantShapes(i)
		n := 0
		complete := true
		for name, s := range shapes {
			if !sameShape(v.Shape(name), s) {
				complete = false
				break
			}
			n++
		}
		if complete && n > bestN {
			best, bestN = i, n
		}
	}
	return best, best >= 0
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// VariantWidths describes the variants' widths for messages:
// "SD3 Medium 1536, SD3.5 Medium 1536, SD3.5 Large 2432".
func (a *Arch) VariantWidths() string {
	var parts []string
	for _, v := range a.Variants() {
		parts = append(parts, fmt.Sprintf("%s %d", v.Name, v.Width))
	}
	return strings.Join(parts, ", ")
}

// VariantIndex returns the index of the variant with the given name.
func (a *Arch) VariantIndex(name string) (int, bool) {
	for i, v := range a.Variants() {
		if v.Name == name {
			return i, true
		}
	}
	return -1, false
}

// sortedVariantIDs lists the architectures with declared variants (docs,
// tests).
func sortedVariantIDs() []string {
	variantMu.Lock()
	defer variantMu.Unlock()
	var ids []string
	for id := range variantReg {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
