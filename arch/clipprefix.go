package arch

import (
	"regexp"
	"strings"
)

// comfyCLIPLayer is a CLIP encoder-layer module in kohya's flattened
// naming, of the kinds ComfyUI's model_lora_keys_clip (LORA_CLIP_MAP,
// layers 0-31) gives extra names.
var comfyCLIPLayer = regexp.MustCompile(`^text_model_encoder_layers_([0-9]|[12][0-9]|3[01])_(mlp_fc1|mlp_fc2|self_attn_q_proj|self_attn_k_proj|self_attn_v_proj|self_attn_out_proj)$`)

// comfyCLIPPrefixes resolves the kohya prefixes ComfyUI maps onto a CLIP-L
// or CLIP-H encoder besides the architecture's own: both "lora_te_" and
// "lora_te1_" name that encoder's layers whenever the model has one
// (comfy/lora.py model_lora_keys_clip), so an SD1.x LoRA written with
// "lora_te1_" and an SDXL or Flux LoRA written with "lora_te_" load.
func comfyCLIPPrefixes(a *Arch, enc *Encoder, eix *nameIndex, prefix string) (Target, bool) {
	if enc.Part != CLIPL && enc.Part != CLIPH {
		return Target{}, false
	}
	if prefix == "lora_te1_text_projection" && enc.Part == CLIPL && enc.Model != nil {
		// OneTrainer's name for CLIP-L's projection, which ComfyUI's CLIP-L
		// always has (comfy/clip_model.py) even where the checkpoint, like
		// SDXL's HF CLIPTextModel, stores none
		w := encoderWidth(enc.Model(Full))
		return Target{Arch: a, Part: enc.Part, Component: enc.Comfy, Module: "text_projection", Param: "text_projection.weight",
			Shape: []int64{w, w}, Convention: "kohya"}, true
	}
	for _, kp := range []string{"lora_te_", "lora_te1_"} {
		rest, ok := strings.CutPrefix(prefix, kp)
		if !ok || !comfyCLIPLayer.MatchString(rest) {
			continue
		}
		e := eix.flat[rest]
		if e == nil || e.ambiguous {
			continue
		}
		return Target{Arch: a, Part: enc.Part, Component: enc.Comfy, Module: e.module, Param: e.param, Shape: e.shape,
			Slice: e.slice, Convention: "kohya"}, true
	}
	return Target{}, false
}
