package extract

import (
	"fmt"
	"io"
	"strings"

	"github.com/loratool/loratool/arch"
)

// unloadablePrefix marks the skip reason of modules the output format's
// loaders cannot load (see unloadable).
const unloadablePrefix = "not loadable by "

// unloadable says why a diffusion-model module of a UNet model is left out
// of a kohya-format LoRA, or "" when the format's loaders load it. kohya's
// network loader (networks/lora.py) and merge_lora.py create LoRA modules
// only inside Transformer2DModel / ResnetBlock2D / Downsample2D /
// Upsample2D blocks, so conv_in, conv_out and the time / label embedding
// linears are dropped ("no module found for LoRA weight"); older diffusers
// releases also mapped both time_embedding linears onto one name.
// ComfyUI-native (comfy) and diffusers/PEFT names load every module.
func unloadable(a *arch.Arch, format string, t arch.Target) string {
	if format != "kohya" || t.Component != arch.DiffusionModel {
		return ""
	}
	switch a.ID {
	case "sd1", "sd2", "sdxl", "sdxl-refiner":
	default:
		return ""
	}
	m := t.Module
	switch {
	case m == "input_blocks.0.0":
		return unloadablePrefix + "kohya's network loader / merge_lora.py (conv_in; --all-modules extracts it)"
	case m == "out.2":
		return unloadablePrefix + "kohya's network loader / merge_lora.py (conv_out; --all-modules extracts it)"
	case strings.HasPrefix(m, "time_embed."), strings.HasPrefix(m, "label_emb."):
		return unloadablePrefix + "kohya's network loader / merge_lora.py (time / label embedding; older diffusers releases also map both time-embedding linears onto one name; --all-modules extracts it)"
	}
	return ""
}

// writeUnloadable names the modules left out because the format's loaders
// cannot load them.
func writeUnloadable(w io.Writer, r *Report) {
	var keys []string
	for _, s := range r.Skipped {
		if strings.HasPrefix(s.Reason, unloadablePrefix) {
			keys = append(keys, s.Key)
		}
	}
	if len(keys) > 0 {
		fmt.Fprintf(w, "  left out (%s's loaders drop them; --all-modules extracts them): %s\n", r.Format, strings.Join(keys, ", "))
	}
}
