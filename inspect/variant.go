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
