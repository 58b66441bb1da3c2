package merge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/lora"
)

// variantMismatch refuses a LoRA made for another variant of the
// checkpoint's architecture (an SD3.5 Large LoRA on SD3 Medium, a Wan 1.3B
// LoRA on 14B): the LoRA's own fit names its variants, the checkpoint's
// detection names its variant, and fewer than half of the modules whose
// shapes fit the LoRA's variant also fit the checkpoint's. (A Flux.1
// control LoRA whose only odd module is img_in still passes.)
func variantMismatch(path string, own lora.Fit, a *arch.Arch, info arch.CheckpointInfo) error {
	if own.Arch != a || info.Arch != a || info.Variant == "" || len(own.Variants) == 0 || slices.Contains(own.Variants, info.Variant) {
		return nil
	}
	ci, ok := a.VariantIndex(info.Variant)
	if !ok || ci >= len(own.VariantFit) {
		return nil
	}
	best := slices.Max(own.VariantFit)
	if own.VariantFit[ci]*2 >= best {
		return nil
	}
	return fmt.Errorf("%s: this LoRA is for %s %s; the checkpoint is %s %s (%d of %d modules fit its shapes)",
		path, a.ID, strings.Join(own.Variants, " / "), a.ID, info.Variant, own.VariantFit[ci], best)
}

// notStoredProjection explains a text-encoder text_projection module whose
// weight the checkpoint does not store (SDXL's CLIP-L, as OneTrainer's
// lora_te1_text_projection addresses): ComfyUI patches the projection of
// its in-memory encoder, which only the pooled output uses, and drops it
// when it saves a checkpoint, so a merged file has nothing to patch.
func notStoredProjection(t arch.Target) string {
	if t.Component == arch.DiffusionModel || t.Module != "text_projection" {
		return ""
	}
	return "the checkpoint stores no " + t.Component + " text_projection (ComfyUI applies it in memory and drops it on save)"
}

// probablyMeant adds, to the reason a module is not matched, the module a
// non-standard name was probably meant for (lora.IntendedModule).
func probablyMeant(a *arch.Arch, prefix string) string {
	t, ok := lora.IntendedModule(a, prefix)
	if !ok {
		return ""
	}
	return " (probably meant " + lora.Describe(t) + "; ComfyUI does not load this name either)"
}
