package arch

import "strings"

// rawParamPrefix names a target whose parameter is not a ".weight" (a norm
// scale, a bias, Wan's modulation): ComfyUI's key map addresses such a
// parameter only by its full name under "diffusion_model.", so the comfy
// and kohya formats (kohya has no flattened name for it) write that; the
// diffusers and peft formats use a foreign alias when one exists
// (diffusers' attn.norm_q for a Flux query_norm.scale).
func rawParamPrefix(a *Arch, t Target, format string) (string, bool) {
	if t.Component != DiffusionModel || t.Slice != nil || t.Param == "" || strings.HasSuffix(t.Param, ".weight") {
		return "", false
	}
	switch format {
	case "comfy", "kohya":
		return "diffusion_model." + t.Param, true
	case "diffusers", "peft":
		if len(a.DiffusersNames(t.Module)) == 0 {
			return "diffusion_model." + t.Param, true
		}
	}
	return "", false
}
