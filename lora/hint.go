package lora

import (
	"strconv"
	"strings"

	"github.com/loratool/loratool/arch"
)

// flatHeads are the kohya-style prefixes after which a name is flattened
// with "_".
var flatHeads = []string{"lora_unet_", "lora_te1_", "lora_te2_", "lora_te3_", "lora_te_", "lora_transformer_", "lycoris_"}

// nameRepairs lists the names a non-standard module prefix was probably
// meant to be: trailing separators trimmed, a kohya name whose tail kept
// its dots flattened, a PEFT wrapper removed, and combinations.
func nameRepairs(prefix string) []string {
	var out []string
	seen := map[string]bool{prefix: true}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	bases := []string{prefix}
	for _, w := range []string{"base_model.model.", "transformer.base_model.model.", "unet.base_model.model."} {
		if rest, ok := strings.CutPrefix(prefix, w); ok {
			bases = append(bases, rest)
		}
	}
	for _, b := range bases {
		for _, s := range []string{b, strings.TrimRight(b, "_.")} {
			add(s)
			for _, h := range flatHeads {
				if rest, ok := strings.CutPrefix(s, h); ok && strings.Contains(rest, ".") {
					add(h + strings.ReplaceAll(rest, ".", "_"))
				}
			}
			// a PEFT adapter name left on the module ("...to_q.default")
			add(strings.TrimSuffix(s, ".default"))
		}
	}
	return out
}

// IntendedModule says which module of a a name that no convention
// resolves was meant for, when exactly one repair of the name (see
// nameRepairs) resolves and every resolving repair agrees. Loaders,
// ComfyUI included, do not read such names; the hint only tells the user
// what to rename.
func IntendedModule(a *arch.Arch, prefix string) (arch.Target, bool) {
	if a == nil {
		return arch.Target{}, false
	}
	var found *arch.Target
	for _, cand := range nameRepairs(prefix) {
		t, ok := a.Resolve(cand)
		if !ok {
			continue
		}
		if found != nil && (found.Component != t.Component || found.Module != t.Module || (found.Slice == nil) != (t.Slice == nil) ||
			(found.Slice != nil && *found.Slice != *t.Slice)) {
			return arch.Target{}, false
		}
		tt := t
		found = &tt
	}
	if found == nil {
		return arch.Target{}, false
	}
	return *found, true
}

// UnknownKeyPrefix splits a tensor name that no suffix convention parses
// but that ends in a known adapter suffix written with "_" for "."
// ("x_lora_up_weight", "x.lora_down_weight"), returning the module prefix.
func UnknownKeyPrefix(key string) (string, bool) {
	for _, r := range suffixRules {
		for _, alt := range []string{strings.ReplaceAll(r.suffix, ".", "_"), lastDotToUnderscore(r.suffix)} {
			if alt != r.suffix && strings.HasSuffix(key, alt) && len(key) > len(alt) {
				return key[:len(key)-len(alt)], true
			}
		}
	}
	return "", false
}

func lastDotToUnderscore(s string) string {
	i := strings.LastIndex(s, ".")
	if i <= 0 {
		return s
	}
	return s[:i] + "_" + s[i+1:]
}

// Describe names a resolved target for messages: "clip_l
// text_model.encoder.layers.0.mlp.fc1" or "diffusion_model
// double_blocks.0.img_attn.qkv (rows 0..3072)".
func Describe(t arch.Target) string {
	s := t.Component + " " + t.Module
	if t.Slice != nil {
		s += " (rows " + strconv.FormatInt(t.Slice.Offset, 10) + ".." + strconv.FormatInt(t.Slice.Offset+t.Slice.Size, 10) + ")"
	}
	return s
}
