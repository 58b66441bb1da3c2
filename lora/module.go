package lora

import (
	"sort"
	"strconv"
	"strings"

	"github.com/loratool/loratool/arch"
)

// TensorRef is a tensor of the file as the grammar sees it.
type TensorRef struct {
	Key   string
	Shape []int64
	DType string
}

// Numel is the tensor's element count.
func (t TensorRef) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Module is one adapted module: a prefix and its adapter tensors by role.
type Module struct {
	Prefix  string
	Tensors map[string]TensorRef // role → tensor; kohya OFT blocks as "oft_blocks.N"
	// Conventions are the suffix families its tensors use.
	Conventions []string
	// Target is set once the module is resolved onto an architecture.
	Target *arch.Target
}

// Has reports whether the module has a tensor for role.
func (m *Module) Has(role string) bool { _, ok := m.Tensors[role]; return ok }

// Algorithms returns the algorithms the module's tensors imply, in
// inspect's vocabulary (lora, loha, lokr, glora, oft, boft, ia3, full,
// norm; plus dora next to them when a DoRA magnitude is present, and dora
// alone for a module that has only a magnitude).
func (m *Module) Algorithms() []string {
	var out []string
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	if m.Has(RoleUp) || m.Has(RoleDown) {
		add("lora")
	}
	for role := range m.Tensors {
		switch {
		case strings.HasPrefix(role, "hada_"):
			add("loha")
		case strings.HasPrefix(role, "lokr_"):
			add("lokr")
		case role == "a1" || role == "a2" || role == "b1" || role == "b2":
			add("glora")
		case role == RoleOFTBlocks || strings.HasPrefix(role, RoleOFTBlocks+"."):
			if len(m.Tensors[role].Shape) == 4 {
				add("boft")
			} else {
				add("oft")
			}
		case role == RoleIA3Weight:
			add("ia3")
		case role == RoleDiff || role == RoleDiffB:
			add("full")
		case role == RoleWNorm || role == RoleBNorm || role == RoleSetWeight:
			add("norm")
		}
	}
	if m.Has(RoleDoRAScale) {
		// also alone (a partial PEFT dump with only lora_magnitude_vector):
		// the module is DoRA, with nothing to apply
		add("dora")
	}
	sort.Strings(out)
	return out
}

// Rank returns the module's rank: LoRA down rows, LoHa w1_b rows, LoKr
// decomposed factors' inner dimension, GLoRA a1 rows; 0 when the
// algorithm has none (full factors, OFT, IA3, diffs).
func (m *Module) Rank() int64 {
	first := func(role string, dim int) int64 {
		t, ok := m.Tensors[role]
		if !ok || len(t.Shape) <= dim {
			return 0
		}
		return t.Shape[dim]
	}
	switch {
	case m.Has(RoleDown):
		return first(RoleDown, 0)
	case m.Has(RoleUp):
		return first(RoleUp, 1)
	case m.Has("hada_w1_b"):
		return first("hada_w1_b", 0)
	case m.Has("lokr_w2_b"):
		return first("lokr_w2_b", 0)
	case m.Has("lokr_w1_b"):
		return first("lokr_w1_b", 0)
	case m.Has("a1"):
		// GLoRA: the smaller dimension of a1 is the rank
		a1 := m.Tensors["a1"].Shape
		if len(a1) >= 2 {
			return min(a1[0], a1[1])
		}
	}
	return 0
}

// DeltaShape returns the (rows, cols) of the weight delta the module
// implies from its tensor shapes (cols flattens conv kernels), when the
// algorithm's shapes determine it.
func (m *Module) DeltaShape() (rows, cols int64, ok bool) {
	prod := func(s []int64) int64 {
		n := int64(1)
		for _, d := range s {
			n *= d
		}
		return n
	}
	t := m.Tensors
	switch {
	case m.Has(RoleUp) && m.Has(RoleDown):
		up, down := t[RoleUp].Shape, t[RoleDown].Shape
		if len(up) < 2 || len(down) < 2 {
			return 0, 0, false
		}
		cols = prod(down[1:])
		if mid, ok := t[RoleMid]; ok && len(mid.Shape) == 4 {
			cols = down[1] * mid.Shape[2] * mid.Shape[3]
		}
		return up[0], cols, true
	case m.Has("hada_w1_a") && m.Has("hada_w1_b"):
		a, b := t["hada_w1_a"].Shape, t["hada_w1_b"].Shape
		if m.Has("hada_t1") || len(a) < 2 || len(b) < 2 {
			return 0, 0, false
		}
		return a[0], prod(b[1:]), true
	case m.Has("lokr_w1") || m.Has("lokr_w1_a"):
		r1, c1, ok1 := factor(t, "lokr_w1")
		r2, c2, ok2 := factor(t, "lokr_w2")
		if !ok1 || !ok2 || m.Has("lokr_t2") {
			return 0, 0, false
		}
		return r1 * r2, c1 * c2, true
	case m.Has(RoleDiff):
		s := t[RoleDiff].Shape
		if len(s) == 0 {
			return 0, 0, false
		}
		return s[0], prod(s[1:]), true
	case m.Has(RoleWNorm):
		s := t[RoleWNorm].Shape
		if len(s) == 0 {
			return 0, 0, false
		}
		return s[0], prod(s[1:]), true
	case m.Has(RoleSetWeight):
		s := t[RoleSetWeight].Shape
		if len(s) == 0 {
			return 0, 0, false
		}
		return s[0], prod(s[1:]), true
	}
	return 0, 0, false
}

// factor returns rows and flattened cols of a LoKr factor given whole
// (name) or decomposed (name_a @ name_b).
func factor(t map[string]TensorRef, name string) (rows, cols int64, ok bool) {
	if w, ok := t[name]; ok && len(w.Shape) >= 2 {
		c := int64(1)
		for _, d := range w.Shape[1:] {
			c *= d
		}
		return w.Shape[0], c, true
	}
	a, okA := t[name+"_a"]
	b, okB := t[name+"_b"]
	if !okA || !okB || len(a.Shape) < 2 || len(b.Shape) < 2 {
		return 0, 0, false
	}
	c := int64(1)
	for _, d := range b.Shape[1:] {
		c *= d
	}
	return a.Shape[0], c, true
}

// Embedding is a textual-inversion vector set found in a file.
type Embedding struct {
	Key     string
	Vectors int64
	Width   int64
}

// Analysis is the grammar's reading of one file's tensor names.
type Analysis struct {
	Modules    []*Module
	Embeddings []Embedding
	// Other holds tensor names no adapter convention explains.
	Other []TensorRef
	// Conventions counts tensors per suffix family.
	Conventions map[string]int
	// Meta is the file's metadata (a tie-breaker for the architecture).
	Meta map[string]string
}

// Analyze groups tensors into modules. meta is the file's metadata (used
// for cloneofsimo token embeddings marked "<embed>").
func Analyze(tensors []TensorRef, meta map[string]string) *Analysis {
	an := &Analysis{Conventions: map[string]int{}, Meta: meta}
	byPrefix := map[string]*Module{}
	var order []string
	onInput := map[string]bool{}
	for _, t := range tensors {
		if p, ok := strings.CutSuffix(t.Key, ".on_input"); ok {
			onInput[p] = true
		}
	}
	put := func(prefix, role, conv string, t TensorRef) {
		m := byPrefix[prefix]
		if m == nil {
			m = &Module{Prefix: prefix, Tensors: map[string]TensorRef{}}
			byPrefix[prefix] = m
			order = append(order, prefix)
		}
		m.Tensors[role] = t
		if conv != "" {
			found := false
			for _, c := range m.Conventions {
				found = found || c == conv
			}
			if !found {
				m.Conventions = append(m.Conventions, conv)
			}
			an.Conventions[conv]++
		}
	}
	for _, t := range tensors {
		if p, ok := strings.CutSuffix(t.Key, ".weight"); ok && onInput[p] {
			put(p, RoleIA3Weight, "lycoris-ia3", t)
			continue
		}
		if e, ok := embedding(t, meta); ok {
			an.Embeddings = append(an.Embeddings, e)
			continue
		}
		pk, ok := ParseKey(t.Key)
		if !ok {
			// BFL control LoRAs carry whole norm scales that replace the
			// model's (ComfyUI converts "_norm.scale" to
			// "_norm.scale.set_weight": the parameter's own name).
			if p, ok := strings.CutSuffix(t.Key, ".scale"); ok && strings.HasSuffix(p, "_norm") {
				put(t.Key, RoleSetWeight, "bfl-control", t)
				continue
			}
			an.Other = append(an.Other, t)
			continue
		}
		role := pk.Role
		if role == RoleOFTBlocks && pk.Convention == "kohya-oft" {
			role = RoleOFTBlocks + "." + strconv.Itoa(pk.Index)
		}
		put(pk.Prefix, role, pk.Convention, t)
	}
	// whole norm scales are BFL control-LoRA tensors only beside real
	// adapter tensors; alone (a full Flux checkpoint has the same names)
	// they are ordinary model parameters
	onlyNorms := an.Conventions["bfl-control"] > 0
	for conv, n := range an.Conventions {
		if conv != "bfl-control" && n > 0 {
			onlyNorms = false
		}
	}
	for _, p := range order {
		m := byPrefix[p]
		if onlyNorms {
			for _, t := range m.Tensors {
				an.Other = append(an.Other, t)
			}
			continue
		}
		an.Modules = append(an.Modules, m)
	}
	if onlyNorms {
		delete(an.Conventions, "bfl-control")
		sort.Slice(an.Other, func(i, j int) bool { return an.Other[i].Key < an.Other[j].Key })
	}
	return an
}

// embedding recognises textual-inversion tensors: A1111/kohya "emb_params",
// A1111 .pt "string_to_param.*", SDXL "clip_l"/"clip_g", and cloneofsimo
// pivotal-tuning tokens marked "<embed>" in the metadata.
func embedding(t TensorRef, meta map[string]string) (Embedding, bool) {
	isTI := t.Key == "emb_params" || strings.HasPrefix(t.Key, "string_to_param.") ||
		t.Key == "clip_l" || t.Key == "clip_g" || meta[t.Key] == "<embed>"
	if !isTI || len(t.Shape) == 0 || len(t.Shape) > 2 {
		return Embedding{}, false
	}
	e := Embedding{Key: t.Key, Vectors: 1, Width: t.Shape[len(t.Shape)-1]}
	if len(t.Shape) == 2 {
		e.Vectors = t.Shape[0]
	}
	return e, true
}
