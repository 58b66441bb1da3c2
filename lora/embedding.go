package lora

import "strings"

// embeddingName returns the name and text-encoder key of an embedding
// tensor: A1111's LoRA bundles "bundle_emb.<name>.string_to_param.<k>"
// (SD1/SD2) and "bundle_emb.<name>.clip_l" / ".clip_g" (SDXL); standalone
// SDXL "clip_l"/"clip_g"; cloneofsimo pivotal-tuning tokens ("<s1>"),
// named by their key. A1111's "emb_params" and "string_to_param.*" files
// carry no name ("").
func embeddingName(key string) (name, encoder string) {
	if rest, ok := strings.CutPrefix(key, "bundle_emb."); ok {
		name, vec, _ := strings.Cut(rest, ".")
		if vec == "clip_l" || vec == "clip_g" {
			encoder = vec
		}
		return name, encoder
	}
	switch {
	case key == "clip_l" || key == "clip_g":
		return "", key
	case key == "emb_params" || strings.HasPrefix(key, "string_to_param."):
		return "", ""
	}
	return key, ""
}

// isBundleEmbedding reports whether key is an embedding bundled in an
// A1111/kohya LoRA ("bundle_emb.<name>.<vector>").
func isBundleEmbedding(key string) bool {
	name, vec, ok := strings.Cut(strings.TrimPrefix(key, "bundle_emb."), ".")
	return strings.HasPrefix(key, "bundle_emb.") && ok && name != "" && vec != ""
}
