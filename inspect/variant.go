package inspect

import (
	"fmt"
	"slices"

	"github.com/loratool/loratool/lora"
)

// doraOnlyWarning explains a module that has only a DoRA magnitude
// (lora_magnitude_vector / dora_scale) and no adapter weights, as a
// partial PEFT dump has: it is DoRA, but nothing in the file changes the
// weight, and ComfyUI logs its key as not loaded.
func doraOnlyWarning(m *lora.Module) string {
	if !slices.Equal(m.Algorithms(), []string{"dora"}) {
		return ""
	}
	return fmt.Sprintf("module %s has only a DoRA magnitude (%s), no adapter weights: nothing to apply (a partial file?)", m.Prefix, m.Tensors[lora.RoleDoRAScale].Key)
}

// setVariant records the variants the file fits: the first as Variant,
// all of them in Variants when there are several.
func setVariant(r *Report, names []string) {
	if len(names) == 0 {
		return
	}
	r.Variant = names[0]
	if len(names) > 1 {
		r.Variants = append([]string(nil), names...)
	}
}

// unknownKeyHints names, for modules no convention resolves, the module
// they were probably meant for when a repair of the name (trailing "_",
// dots left in a kohya name, a PEFT wrapper) makes it unambiguous. The
// keys stay unknown: no loader, ComfyUI included, reads them as written.
func unknownKeyHints(fit lora.Fit, an *lora.Analysis) []string {
	if fit.Arch == nil {
		return nil
	}
	var out []string
	hint := func(name string, prefix string, n int) {
		t, ok := lora.IntendedModule(fit.Arch, prefix)
		if !ok {
			return
		}
		out = append(out, fmt.Sprintf("%s (%d tensors) follows no loader's naming; it was probably meant for %s", name, n, lora.Describe(t)))
	}
	for _, m := range fit.Unresolved {
		hint(m.Prefix, m.Prefix, len(m.Tensors))
	}
	others := map[string]int{}
	var order []string
	for _, t := range an.Other {
		if p, ok := lora.UnknownKeyPrefix(t.Key); ok {
			if others[p] == 0 {
				order = append(order, p)
			}
			others[p]++
		}
	}
	for _, p := range order {
		hint(p, p, others[p])
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... and %d more unknown names with a probable module", len(out)-10))
	}
	return out
}

// shapeMisfit: the module's shapes contradict the variant the file fits
// best (the full-size table when the architecture declares no variants).
func shapeMisfit(fit lora.Fit, m *lora.Module) bool {
	if len(fit.Variants) > 0 {
		fits, known := fit.ModuleFits(m)
		return known && !fits
	}
	return shapeMismatch(m)
}

// variantMisfitWarning: some modules do not fit the variant the others fit.
func variantMisfitWarning(fit lora.Fit, misfit []*lora.Module, total int) string {
	m := misfit[0]
	rows, cols, _ := m.DeltaShape()
	return fmt.Sprintf("%d of %d modules have shapes that do not fit %s %s (e.g. %s: %d×%d, or a module that variant lacks)",
		len(misfit), total, fit.Arch.ID, fit.Variants[0], m.Prefix, rows, cols)
}
