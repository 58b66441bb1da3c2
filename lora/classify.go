package lora

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/loratool/loratool/arch"
)

// Fit is the architecture decision for a LoRA's modules.
type Fit struct {
	// Arch is the chosen architecture; nil when no architecture explains
	// the modules (or only text encoders shared by several do).
	Arch *arch.Arch
	// Also lists other architectures that fit exactly as well (keys and
	// shapes cannot separate them).
	Also []*arch.Arch
	// Confidence is "high" (one architecture explains every module and
	// every checked shape), "medium" (ties or unchecked shapes), "low"
	// (some modules unexplained) or "none".
	Confidence string
	Evidence   string
	// Unresolved are the modules the chosen architecture cannot place.
	Unresolved []*Module
	Candidates []arch.Candidate
	// Variants names the chosen architecture's variants whose shapes fit
	// best (empty when the architecture declares none or no shape fits);
	// several when the file cannot tell them apart. VariantFit counts, per
	// variant in arch.Variants() order, the modules whose shapes fit it.
	Variants   []string
	VariantFit []int
}

var cloneofsimoPrefix = regexp.MustCompile(`^(unet|text_encoder):(\d+)$`)

// resolve places one module on an architecture.
func resolve(a *arch.Arch, m *Module) (arch.Target, bool) {
	if c := cloneofsimoPrefix.FindStringSubmatch(m.Prefix); c != nil {
		if a.Indexed == nil {
			return arch.Target{}, false
		}
		list := a.Indexed(c[1])
		n, err := strconv.Atoi(c[2])
		if err != nil || n < 0 || n >= len(list) {
			return arch.Target{}, false
		}
		t, ok := a.Resolve(list[n])
		t.Convention = "cloneofsimo"
		return t, ok
	}
	return a.Resolve(m.Prefix)
}

// shapeFits reports whether the module's implied delta shape matches the
// target (known is false when the module's shapes don't say).
func shapeFits(m *Module, t arch.Target) (fits, known bool) {
	rows, cols, ok := m.DeltaShape()
	if !ok || len(t.Shape) == 0 {
		return false, false
	}
	if m.Has(RoleSetWeight) || m.Has(RoleDiff) || m.Has(RoleWNorm) {
		return rows*cols == t.Rows()*t.Cols(), true
	}
	return rows == t.Rows() && cols == t.Cols(), true
}

// variantFits is shapeFits against variant vi's table: a module whose
// parameter the variant lacks does not fit it.
func variantFits(a *arch.Arch, vi int, m *Module, t arch.Target) (fits, known bool) {
	if t.Component != arch.DiffusionModel {
		return shapeFits(m, t)
	}
	vr, vc, has := a.VariantDelta(vi, t)
	if !has {
		return false, true
	}
	rows, cols, ok := m.DeltaShape()
	if !ok {
		return false, false
	}
	if m.Has(RoleSetWeight) || m.Has(RoleDiff) || m.Has(RoleWNorm) {
		return rows*cols == vr*vc, true
	}
	return rows == vr && cols == vc, true
}

// FitArch decides the architecture. With force non-nil, only that
// architecture is tried.
func (an *Analysis) FitArch(archs []*arch.Arch, force *arch.Arch) Fit {
	if force != nil {
		archs = []*arch.Arch{force}
	}
	// probe a few modules first so the likely architectures are tried
	// first; then an architecture that can no longer reach the leader's
	// counts is abandoned early (it cannot win or tie)
	sample := an.Modules[:min(8, len(an.Modules))]
	type probe struct {
		a    *arch.Arch
		hits int
	}
	order := make([]probe, len(archs))
	for i, a := range archs {
		order[i].a = a
		for _, m := range sample {
			if _, ok := resolve(a, m); ok {
				order[i].hits++
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].hits > order[j].hits })
	var cands []arch.Candidate
	leadFit, leadRes := 0, 0
	for _, o := range order {
		a := o.a
		vs := a.Variants()
		c := arch.Candidate{Arch: a, Variant: -1, VariantFit: make([]int, len(vs)), VariantKnown: make([]int, len(vs))}
		maxFit := 0
		for i, m := range an.Modules {
			left := len(an.Modules) - i
			if maxFit+left < leadFit || (maxFit+left <= leadFit && c.Resolved+left < leadRes) {
				c.Pruned = true
				break
			}
			t, ok := resolve(a, m)
			if !ok {
				continue
			}
			c.Resolved++
			if t.Component == arch.DiffusionModel {
				c.DiffusionModules++
			}
			if len(vs) == 0 {
				if fits, known := shapeFits(m, t); known {
					c.ShapeKnown++
					if fits {
						c.ShapeFit++
					}
				}
				maxFit = c.ShapeFit
				continue
			}
			for vi := range vs {
				if fits, known := variantFits(a, vi, m, t); known {
					c.VariantKnown[vi]++
					if fits {
						c.VariantFit[vi]++
						maxFit = max(maxFit, c.VariantFit[vi])
					}
				}
			}
		}
		if len(vs) > 0 {
			// the best variant: most fits, then fewest misfits, then the
			// order of declaration
			best := 0
			for vi := range vs {
				mi, mb := c.VariantKnown[vi]-c.VariantFit[vi], c.VariantKnown[best]-c.VariantFit[best]
				if c.VariantFit[vi] > c.VariantFit[best] || (c.VariantFit[vi] == c.VariantFit[best] && mi < mb) {
					best = vi
				}
			}
			c.Variant, c.ShapeFit, c.ShapeKnown = best, c.VariantFit[best], c.VariantKnown[best]
		}
		if !c.Pruned && (c.ShapeFit > leadFit || (c.ShapeFit == leadFit && c.Resolved > leadRes)) {
			leadFit, leadRes = c.ShapeFit, c.Resolved
		}
		cands = append(cands, c)
	}
	arch.Rank(cands)
	preferDeclared(cands, an.Meta)
	f := Fit{Candidates: cands, Confidence: "none"}
	if len(cands) == 0 || cands[0].Resolved == 0 {
		f.Unresolved = an.Modules
		return f
	}
	best := cands[0]
	var ties []*arch.Arch
	for _, c := range cands[1:] {
		if c.Resolved == best.Resolved && c.ShapeFit == best.ShapeFit {
			ties = append(ties, c.Arch)
		}
	}
	if best.DiffusionModules == 0 && len(ties) > 0 && force == nil {
		// only text encoders, which several architectures share
		f.Also = append([]*arch.Arch{best.Arch}, ties...)
		f.Confidence = "none"
		f.Evidence = fmt.Sprintf("only text-encoder modules; they fit %s alike", archIDs(f.Also))
		return f
	}
	f.Arch, f.Also = best.Arch, ties
	for _, m := range an.Modules {
		t, ok := resolve(best.Arch, m)
		if ok {
			tt := t
			m.Target = &tt
		} else {
			f.Unresolved = append(f.Unresolved, m)
		}
	}
	noShapeFits := best.ShapeKnown > 0 && best.ShapeFit == 0
	f.setVariants(best)
	switch {
	case len(f.Unresolved) > 0 || noShapeFits:
		f.Confidence = "low"
	case len(ties) > 0 || best.ShapeKnown == 0 || best.ShapeFit < best.ShapeKnown:
		f.Confidence = "medium"
	default:
		f.Confidence = "high"
	}
	f.Evidence = fmt.Sprintf("%d of %d modules resolve to %s names", best.Resolved, len(an.Modules), best.Arch.ID)
	if best.ShapeKnown > 0 {
		f.Evidence += fmt.Sprintf(", %d of %d shapes fit", best.ShapeFit, best.ShapeKnown)
		if len(f.Variants) > 0 {
			f.Evidence += " " + strings.Join(f.Variants, " / ")
		}
	}
	if noShapeFits {
		f.Evidence += "; no candidate's shapes fit (tried " + triedWidths(cands) + ")"
	}
	if len(ties) > 0 {
		f.Evidence += "; equally consistent with " + archIDs(ties)
	} else if len(cands) > 1 && cands[1].Resolved > 0 && !cands[1].Pruned {
		f.Evidence += fmt.Sprintf("; next best %s (%d resolved, %d shapes fit)", cands[1].Arch.ID, cands[1].Resolved, cands[1].ShapeFit)
	}
	return f
}

// setVariants records the variants of the chosen architecture that fit
// best (several when their tables cannot be told apart by the file; none
// when every variant fits alike).
func (f *Fit) setVariants(c arch.Candidate) {
	if c.Variant < 0 || c.ShapeFit == 0 {
		return
	}
	vs := c.Arch.Variants()
	var names []string
	for vi := range vs {
		if c.VariantFit[vi] == c.ShapeFit && c.VariantKnown[vi] == c.ShapeKnown {
			names = append(names, vs[vi].Name)
		}
	}
	f.VariantFit = c.VariantFit
	if len(names) == len(vs) && len(vs) > 1 {
		// every variant fits alike: the file says nothing about the size
		return
	}
	f.Variants = names
}

// triedWidths names, for the leading candidates that resolved names, the
// widths of the variants whose shapes were compared.
func triedWidths(cs []arch.Candidate) string {
	var parts []string
	for i, c := range cs {
		if i >= 3 || c.Resolved == 0 {
			break
		}
		if w := c.Arch.VariantWidths(); w != "" {
			parts = append(parts, c.Arch.ID+": "+w)
		} else {
			parts = append(parts, c.Arch.ID+": its one size")
		}
	}
	return strings.Join(parts, "; ")
}

func archIDs(as []*arch.Arch) string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return strings.Join(ids, ", ")
}

// GuessPart names the model part a module addresses from its prefix
// alone (comfyui-lora.md §1.4), for modules no architecture resolves.
func GuessPart(prefix string) arch.Part {
	p := prefix
	switch {
	case strings.HasPrefix(p, "text_encoder:"):
		return arch.CLIPL
	case strings.HasPrefix(p, "lora_te3_"):
		return arch.T5
	case strings.HasPrefix(p, "lora_te2_") || strings.HasPrefix(p, "text_encoder_2."):
		if strings.Contains(p, "encoder_block") {
			return arch.T5
		}
		return arch.CLIPG
	case strings.HasPrefix(p, "lora_te"), strings.HasPrefix(p, "text_encoder."):
		if strings.Contains(p, "encoder_block") {
			return arch.T5
		}
		if strings.HasPrefix(p, "lora_te_layers_") || strings.HasPrefix(p, "lora_te_model_") {
			return arch.LLM
		}
		return arch.CLIPL
	case strings.HasPrefix(p, "text_encoders."):
		rest := strings.TrimPrefix(p, "text_encoders.")
		switch {
		case strings.HasPrefix(rest, "clip_l."):
			return arch.CLIPL
		case strings.HasPrefix(rest, "clip_g."):
			return arch.CLIPG
		case strings.HasPrefix(rest, "clip_h."):
			return arch.CLIPH
		case strings.HasPrefix(rest, "t5"), strings.HasPrefix(rest, "umt5"), strings.HasPrefix(rest, "pile_t5"):
			return arch.T5
		}
		return arch.LLM
	}
	if arch.LooksLikeUNet(p) {
		return arch.UNet
	}
	return arch.DiT
}

// Parts returns the sorted set of model parts the analysed file touches.
func (an *Analysis) Parts(f Fit) []string {
	set := map[string]bool{}
	for _, m := range an.Modules {
		if m.Target != nil {
			set[string(m.Target.Part)] = true
		} else if len(m.Tensors) > 0 {
			set[string(GuessPart(m.Prefix))] = true
		}
	}
	for _, e := range an.Embeddings {
		set[string(EmbeddingPart(e, f.Arch))] = true
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// EmbeddingPart names the text encoder an embedding belongs to.
func EmbeddingPart(e Embedding, a *arch.Arch) arch.Part {
	switch e.Key {
	case "clip_l":
		return arch.CLIPL
	case "clip_g":
		return arch.CLIPG
	}
	if a != nil {
		for _, enc := range a.Encoders {
			if enc.Model != nil && arch.EncoderWidth(enc.Model(arch.Full)) == e.Width {
				return enc.Part
			}
		}
	}
	switch e.Width {
	case 1024:
		return arch.CLIPH
	case 1280:
		return arch.CLIPG
	}
	return arch.CLIPL
}

// EmbeddingArch picks the architecture a standalone embedding is for: the
// most preferred architecture whose first text encoder has the embedding's
// width (SDXL-style clip_l+clip_g pairs: the first with both encoders).
func EmbeddingArch(es []Embedding, archs []*arch.Arch) *arch.Arch {
	if len(es) == 0 {
		return nil
	}
	keys := map[string]bool{}
	for _, e := range es {
		keys[e.Key] = true
	}
	for _, a := range archs {
		if len(a.Encoders) == 0 || a.Encoders[0].Model == nil {
			continue
		}
		if keys["clip_l"] && keys["clip_g"] {
			if len(a.Encoders) >= 2 && a.Encoders[0].Part == arch.CLIPL && a.Encoders[1].Part == arch.CLIPG {
				return a
			}
			continue
		}
		if arch.EncoderWidth(a.Encoders[0].Model(arch.Full)) == es[0].Width && a.Part == arch.UNet {
			return a
		}
	}
	return nil
}

// preferDeclared moves, among the leading candidates that fit exactly
// equally well, the one the file's metadata names (ss_base_model_version
// or modelspec.architecture) to the front.
func preferDeclared(cs []arch.Candidate, meta map[string]string) {
	if len(cs) < 2 || len(meta) == 0 {
		return
	}
	declared := func(a *arch.Arch) bool {
		if v := meta["ss_base_model_version"]; v != "" && a.KohyaVersion != "" && v == a.KohyaVersion {
			return true
		}
		ms := meta["modelspec.architecture"]
		return ms != "" && a.ModelSpec != "" && (ms == a.ModelSpec || strings.HasPrefix(ms, a.ModelSpec+"/"))
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].Resolved != cs[0].Resolved || cs[i].ShapeFit != cs[0].ShapeFit {
			break
		}
		if declared(cs[i].Arch) && !declared(cs[0].Arch) {
			cs[0], cs[i] = cs[i], cs[0]
			return
		}
	}
}

// ModuleFits reports whether a resolved module's shapes fit the chosen
// architecture's best variant (its full-size table when it declares no
// variants, or no variant fits); known is false when the shapes don't say.
func (f Fit) ModuleFits(m *Module) (fits, known bool) {
	if m.Target == nil {
		return false, false
	}
	if f.Arch != nil && len(f.Variants) > 0 {
		if vi, ok := f.Arch.VariantIndex(f.Variants[0]); ok {
			return variantFits(f.Arch, vi, m, *m.Target)
		}
	}
	return shapeFits(m, *m.Target)
}
