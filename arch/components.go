package arch

import (
	"sort"
	"strconv"
	"strings"
)

// MapView is a View over a key → shape map.
type MapView map[string][]int64

// Has reports whether name is a key.
func (m MapView) Has(name string) bool { _, ok := m[name]; return ok }

// Shape returns the shape of name (nil when absent).
func (m MapView) Shape(name string) []int64 { return m[name] }

// Count returns the number of distinct integers N with a key prefix+N+".".
func (m MapView) Count(prefix string) int {
	seen := map[string]bool{}
	for k := range m {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(num); err == nil {
			seen[num] = true
		}
	}
	return len(seen)
}

// ParamsView returns the view of a parameter list (name → shape).
func ParamsView(ps []Param) MapView {
	v := make(MapView, len(ps))
	for _, p := range ps {
		v[p.Name] = p.Shape
	}
	return v
}

// Sub returns the view of the keys under prefix, with prefix removed.
func (m MapView) Sub(prefix string) MapView {
	out := MapView{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// CheckpointInfo is what DetectCheckpoint learns from a full model file.
type CheckpointInfo struct {
	Arch     *Arch  // nil when the diffusion model is unknown or absent
	Evidence string // decisive keys and shapes
	// Variant names the declared variant whose whole table the file holds
	// with its shapes ("" when none does, or none is declared).
	Variant string
	Parts   []Part // sorted
	// Layout: "single-file" (prefixed components), "diffusion-model"
	// (bare native names), "diffusers" (diffusers names), "text-encoder",
	// "vae", or "unknown".
	Layout string
	// DiffusionPrefix is the prefix of the diffusion model's keys in this
	// file ("" for bare files).
	DiffusionPrefix string
}

// DetectCheckpoint identifies a full (non-LoRA) model file from its keys
// and shapes: the architecture of its diffusion model (native layout by
// the registry's Detect rules, diffusers layout by resolving names), and
// which parts it holds.
func DetectCheckpoint(keys MapView) CheckpointInfo {
	info := CheckpointInfo{Layout: "unknown"}
	parts := map[Part]bool{}
	prefixes := map[string]bool{}
	for _, a := range All() {
		if a.DiffusionPrefix != "" {
			prefixes[a.DiffusionPrefix] = true
		}
	}
	for p := range prefixes {
		for k := range keys {
			if strings.HasPrefix(k, p) {
				info.DiffusionPrefix = p
				break
			}
		}
	}
	dm := keys
	if info.DiffusionPrefix != "" {
		dm = keys.Sub(info.DiffusionPrefix)
		info.Layout = "single-file"
	}
	for _, a := range All() {
		if a.Detect == nil {
			continue
		}
		if ok, ev := a.Detect(dm); ok {
			info.Arch, info.Evidence = a, ev
			if vi, ok := a.DetectVariant(dm); ok {
				info.Variant = a.Variants()[vi].Name
			}
			parts[a.Part] = true
			if info.Layout == "unknown" {
				info.Layout = "diffusion-model"
			}
			break
		}
	}
	if info.Arch == nil && info.DiffusionPrefix == "" {
		if a, n := resolveByNames(keys); a != nil {
			info.Arch = a
			info.Evidence = strconv.Itoa(n) + " of " + strconv.Itoa(len(keys)) + " keys are " + a.ID + " module names (diffusers layout)"
			info.Layout = "diffusers"
			parts[a.Part] = true
		}
	}
	// text encoders and VAEs stored under their single-file prefixes
	for _, a := range All() {
		for _, e := range a.Encoders {
			if e.CheckpointPrefix != "" && hasPrefix(keys, e.CheckpointPrefix) {
				parts[e.Part] = true
			}
		}
		if a.VAEPrefix != "" && hasPrefix(keys, a.VAEPrefix+"decoder.") {
			parts[VAE] = true
		}
	}
	if len(parts) == 0 {
		if p, ok := standalonePart(keys); ok {
			parts[p] = true
			if p == VAE {
				info.Layout = "vae"
			} else {
				info.Layout = "text-encoder"
			}
		}
	}
	for p := range parts {
		info.Parts = append(info.Parts, p)
	}
	sort.Slice(info.Parts, func(i, j int) bool { return info.Parts[i] < info.Parts[j] })
	return info
}

func hasPrefix(keys MapView, p string) bool {
	for k := range keys {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// standalonePart recognises a bare text encoder or VAE file.
func standalonePart(keys MapView) (Part, bool) {
	if keys.Has("decoder.conv_in.weight") && keys.Has("encoder.conv_in.weight") {
		return VAE, true
	}
	if fc := keys.Shape("text_model.encoder.layers.0.mlp.fc1.weight"); len(fc) == 2 {
		switch n := keys.Count("text_model.encoder.layers."); {
		case n >= 32:
			return CLIPG, true
		case n >= 24:
			return CLIPH, true
		default:
			return CLIPL, true
		}
	}
	if keys.Has("encoder.block.0.layer.0.SelfAttention.q.weight") {
		return T5, true
	}
	if keys.Has("model.layers.0.self_attn.q_proj.weight") || keys.Has("layers.0.self_attn.q_proj.weight") {
		return LLM, true
	}
	return "", false
}

// resolveByNames finds the architecture whose module names (native or
// diffusers) explain most keys of a bare file; at least half the keys and
// 20 modules must resolve.
func resolveByNames(keys MapView) (*Arch, int) {
	var best *Arch
	bestN := 0
	for _, a := range All() {
		n := 0
		for k := range keys {
			mod, _, ok := ModuleOf(k)
			if !ok {
				mod = k
			}
			if t, ok := a.Resolve(mod); ok && t.Component == DiffusionModel {
				n++
			}
		}
		if n > bestN {
			best, bestN = a, n
		}
	}
	if bestN < 20 || bestN*2 < len(keys) {
		return nil, 0
	}
	return best, bestN
}
