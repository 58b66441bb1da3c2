package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// Unexported helpers shared by the DiT tables of hunyuanvideo.go, wan.go,
// qwenimage.go, hidream.go, zimage.go, lumina2.go and ltxv.go. Names carry a
// "B" suffix so they cannot collide with other files' helpers.

// tableB is the shared parameter-table builder.
type tableB = paramList

// aliasesB accumulates foreign module names.
type aliasesB struct{ as []Alias }

func (a *aliasesB) to(name, target string) {
	a.as = append(a.as, Alias{Name: name, Target: target})
}

func (a *aliasesB) slice(name, target string, offset, size int64) {
	a.as = append(a.as, Alias{Name: name, Target: target, Slice: &Slice{Offset: offset, Size: size}})
}

func (a *aliasesB) swapped(name, target string) {
	a.as = append(a.as, Alias{Name: name, Target: target, SwapScaleShift: true})
}

func itoaB(i int) string { return strconv.Itoa(i) }

// shapeB formats a shape for evidence strings: [3072 16 1 2 2].
func shapeB(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// dimB returns dimension i of a tensor's shape; -1 when the tensor is
// absent or has fewer dimensions (negative i counts from the end).
func dimB(v View, name string, i int) int64 {
	s := v.Shape(name)
	if i < 0 {
		i += len(s)
	}
	if s == nil || i < 0 || i >= len(s) {
		return -1
	}
	return s[i]
}

// keyEvidenceB renders "name shape" for an evidence string.
func keyEvidenceB(v View, name string) string {
	return fmt.Sprintf("%s %s", name, shapeB(v.Shape(name)))
}

// nextDiTB configures the NextDiT generator shared by Lumina-Image 2.0 and
// Z-Image (comfy/ldm/lumina/model.py).
type nextDiTB struct {
	dim, heads, kvHeads, ffn, capFeat, in, freq int64
	tHidden, tOut                               int64 // t_embedder widths; tOut feeds every adaLN
	layers, refiners                            int
	zImage                                      bool // adaLN_modulation.0 (no SiLU), pad tokens, no norm_final
}

func nextDiTParamsB(c nextDiTB) []Param {
	var t tableB
	headDim := c.dim / c.heads
	adaLN := "adaLN_modulation.1"
	if c.zImage {
		adaLN = "adaLN_modulation.0"
	}
	block := func(p string, modulated bool) {
		t.linear(p+"attention.qkv", (c.heads+2*c.kvHeads)*headDim, c.dim, false)
		t.linear(p+"attention.out", c.dim, c.heads*headDim, false)
		t.weight(p+"attention.q_norm", headDim)
		t.weight(p+"attention.k_norm", headDim)
		t.linear(p+"feed_forward.w1", c.ffn, c.dim, false)
		t.linear(p+"feed_forward.w2", c.dim, c.ffn, false)
		t.linear(p+"feed_forward.w3", c.ffn, c.dim, false)
		for _, n := range []string{"attention_norm1", "ffn_norm1", "attention_norm2", "ffn_norm2"} {
			t.weight(p+n, c.dim)
		}
		if modulated {
			t.linear(p+adaLN, 4*c.dim, c.tOut, true)
		}
	}
	t.linear("x_embedder", c.dim, 4*c.in, true)
	for i := 0; i < c.refiners; i++ {
		block("noise_refiner."+itoaB(i)+".", true)
	}
	for i := 0; i < c.refiners; i++ {
		block("context_refiner."+itoaB(i)+".", false)
	}
	t.linear("t_embedder.mlp.0", c.tHidden, c.freq, true)
	t.linear("t_embedder.mlp.2", c.tOut, c.tHidden, true)
	t.weight("cap_embedder.0", c.capFeat)
	t.linear("cap_embedder.1", c.dim, c.capFeat, true)
	for i := 0; i < c.layers; i++ {
		block("layers."+itoaB(i)+".", true)
	}
	if !c.zImage {
		t.weight("norm_final", c.dim)
	}
	t.linear("final_layer.linear", 4*c.in, c.dim, true)
	t.linear("final_layer.adaLN_modulation.1", c.dim, c.tOut, true)
	if c.zImage {
		t.add("x_pad_token", 1, c.dim)
		t.add("cap_pad_token", 1, c.dim)
	}
	return t.ps
}

// nextDiTComfyAliasesB are the names ComfyUI's z_image_to_diffusers maps
// onto both Lumina2 and Z-Image models (the Z-Image diffusers naming):
// attention.to_q/to_k/to_v as row slices of attention.qkv of sizes
// q/kv/kv, attention.to_out.0, attention.norm_q/norm_k, all_x_embedder.2-1
// and all_final_layer.2-1.
func nextDiTComfyAliasesB(a *aliasesB, layers, refiners int, q, kv int64) {
	blocks := []string{}
	for i := 0; i < layers; i++ {
		blocks = append(blocks, "layers."+itoaB(i)+".")
	}
	for i := 0; i < refiners; i++ {
		blocks = append(blocks, "noise_refiner."+itoaB(i)+".", "context_refiner."+itoaB(i)+".")
	}
	for _, p := range blocks {
		a.slice(p+"attention.to_q", p+"attention.qkv", 0, q)
		a.slice(p+"attention.to_k", p+"attention.qkv", q, kv)
		a.slice(p+"attention.to_v", p+"attention.qkv", q+kv, kv)
		a.to(p+"attention.to_out.0", p+"attention.out")
		a.to(p+"attention.norm_q", p+"attention.q_norm")
		a.to(p+"attention.norm_k", p+"attention.k_norm")
	}
	a.to("all_x_embedder.2-1", "x_embedder")
	a.to("all_final_layer.2-1.linear", "final_layer.linear")
	a.to("all_final_layer.2-1.adaLN_modulation.1", "final_layer.adaLN_modulation.1")
}

// detectNextDiTB is the shared part of Lumina2 / Z-Image detection:
// cap_embedder.1.weight, with z-image modulation (adaLN_modulation.0,
// pad tokens) telling the two apart.
func detectNextDiTB(v View) (ok, zImage bool, evidence string) {
	const key = "cap_embedder.1.weight"
	if !v.Has(key) || !v.Has("layers.0.attention.qkv.weight") {
		return false, false, ""
	}
	switch {
	case v.Has("layers.0.adaLN_modulation.0.weight"):
		zImage = true
	case v.Has("layers.0.adaLN_modulation.1.weight"):
		zImage = false
	default:
		return false, false, ""
	}
	dim, capFeat := dimB(v, key, 0), dimB(v, key, 1)
	qkv := dimB(v, "layers.0.attention.qkv.weight", 0)
	heads := dim / max(dimB(v, "layers.0.attention.q_norm.weight", 0), 1)
	return true, zImage, fmt.Sprintf("%s (dim %d, cap_feat_dim %d); layers.0.attention.qkv.weight rows %d (%d heads); %d layers, %d refiners",
		keyEvidenceB(v, key), dim, capFeat, qkv, heads, v.Count("layers."), v.Count("noise_refiner."))
}
