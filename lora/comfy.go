package lora

import (
	"strings"

	"github.com/loratool/loratool/arch"
)

// ComfyIgnoredReason says why ComfyUI's LoraLoader (ComfyUI 94c298f9,
// comfy/lora.py model_lora_keys_unet / model_lora_keys_clip / load_lora)
// does not load a module that loratool resolves onto architecture a, or ""
// when ComfyUI loads it. The rules are the divergences the ComfyUI golden
// cases (testdata/golden/comfyui) show; docs/merge.md has the table.
func ComfyIgnoredReason(a *arch.Arch, m *Module) string {
	if a == nil {
		return ""
	}
	for _, al := range m.Algorithms() {
		if al == "ia3" {
			return "(IA)³ is not a ComfyUI adapter"
		}
	}
	pre := m.Prefix
	if cloneofsimoPrefix.MatchString(pre) {
		return "ComfyUI has no cloneofsimo numbered names (unet:N, text_encoder:N)"
	}
	if strings.HasPrefix(pre, "lora_unet_unet_") {
		return "ComfyUI's key map has no lora_unet_unet_ names"
	}
	if strings.HasPrefix(pre, "base_model.model.") && a.ID != "sd3" {
		return "ComfyUI maps raw PEFT base_model.model. names only for SD3, PixArt and HunyuanDiT"
	}
	switch a.ID {
	case "flux1", "sd3":
		// ComfyUI: lora_unet_ + native names only; diffusers paths as
		// transformer., lora_transformer_ (OneTrainer) or lycoris_
		if strings.HasPrefix(pre, "lora_unet_") && m.Target != nil && m.Target.Foreign {
			return "ComfyUI knows lora_unet_ names of " + a.ID + " only for its native modules (diffusers paths: lora_transformer_, lycoris_, transformer.)"
		}
	case "sd1", "sd2", "sdxl", "sdxl-refiner":
		d := strings.TrimPrefix(pre, "unet.")
		if (strings.HasPrefix(d, "down_blocks.") || strings.HasPrefix(d, "up_blocks.") || strings.HasPrefix(d, "mid_block.")) &&
			strings.Contains(d, ".to_") && !strings.Contains(d, ".processor.") {
			return "ComfyUI knows diffusers UNet attention names only in the attn-processor form (attn1.processor.to_q)"
		}
	}
	return ""
}
