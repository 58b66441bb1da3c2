// Package lora is loratool's LoRA key grammar: it turns a file's tensor
// names into modules (a module prefix plus its adapter tensors, by role),
// recognises every suffix convention ComfyUI, kohya, LyCORIS, diffusers,
// PEFT, OneTrainer, ai-toolkit, XLabs and cloneofsimo write, and resolves
// module prefixes onto an architecture through the arch registry.
package lora

import (
	"regexp"
	"sort"
	"strings"
)

// Roles of adapter tensors (shared with package adapter).
const (
	RoleUp            = "up"
	RoleDown          = "down"
	RoleMid           = "mid"
	RoleAlpha         = "alpha"
	RoleDoRAScale     = "dora_scale"
	RoleReshapeWeight = "reshape_weight"
	RoleDiff          = "diff"
	RoleDiffB         = "diff_b"
	RoleWNorm         = "w_norm"
	RoleBNorm         = "b_norm"
	RoleSetWeight     = "set_weight"
	RoleOFTBlocks     = "oft_blocks"
	RoleRescale       = "rescale"
	RoleIA3Weight     = "ia3_weight"
	RoleOnInput       = "on_input"
)

// suffixRule maps a tensor-name suffix to a role. Convention names the
// writer family, for the format report.
type suffixRule struct {
	suffix, role, convention string
}

// suffixRules are tried longest first (the table is sorted at init).
var suffixRules = []suffixRule{
	{".lora_up.weight", RoleUp, "kohya"},
	{".lora_down.weight", RoleDown, "kohya"},
	{".lora_mid.weight", RoleMid, "kohya"},
	{"_lora.up.weight", RoleUp, "diffusers-attn-processor"},
	{"_lora.down.weight", RoleDown, "diffusers-attn-processor"},
	{".lora_B.weight", RoleUp, "peft"},
	{".lora_A.weight", RoleDown, "peft"},
	{".lora_B.default.weight", RoleUp, "peft"},
	{".lora_A.default.weight", RoleDown, "peft"},
	{".lora_B.bias", RoleDiffB, "peft"},
	{".lora_B", RoleUp, "peft"},
	{".lora_A", RoleDown, "peft"},
	{".lora.up.weight", RoleUp, "diffusers"},
	{".lora.down.weight", RoleDown, "diffusers"},
	{".lora_linear_layer.up.weight", RoleUp, "diffusers"},
	{".lora_linear_layer.down.weight", RoleDown, "diffusers"},
	{".lora_magnitude_vector", RoleDoRAScale, "peft"},
	{".hada_w1_a", "hada_w1_a", "lycoris"},
	{".hada_w1_b", "hada_w1_b", "lycoris"},
	{".hada_w2_a", "hada_w2_a", "lycoris"},
	{".hada_w2_b", "hada_w2_b", "lycoris"},
	{".hada_t1", "hada_t1", "lycoris"},
	{".hada_t2", "hada_t2", "lycoris"},
	{".lokr_w1", "lokr_w1", "lycoris"},
	{".lokr_w1_a", "lokr_w1_a", "lycoris"},
	{".lokr_w1_b", "lokr_w1_b", "lycoris"},
	{".lokr_w2", "lokr_w2", "lycoris"},
	{".lokr_w2_a", "lokr_w2_a", "lycoris"},
	{".lokr_w2_b", "lokr_w2_b", "lycoris"},
	{".lokr_t2", "lokr_t2", "lycoris"},
	{".a1.weight", "a1", "lycoris"},
	{".a2.weight", "a2", "lycoris"},
	{".b1.weight", "b1", "lycoris"},
	{".b2.weight", "b2", "lycoris"},
	{".oft_blocks", RoleOFTBlocks, "lycoris"},
	{".rescale", RoleRescale, "lycoris"},
	{".w_norm", RoleWNorm, "lycoris"},
	{".b_norm", RoleBNorm, "lycoris"},
	{".diff", RoleDiff, "lycoris"},
	{".diff_b", RoleDiffB, "lycoris"},
	{".set_weight", RoleSetWeight, "comfy"},
	{".reshape_weight", RoleReshapeWeight, "comfy"},
	{".alpha", RoleAlpha, ""},
	{".dora_scale", RoleDoRAScale, ""},
	{".on_input", RoleOnInput, "lycoris"},
	// not understood by ComfyUI: a kohya prefix over dotted diffusers names
	// with the suffix glued by "_"
	{"_lora_up.weight", RoleUp, "nonstandard"},
	{"_lora_down.weight", RoleDown, "nonstandard"},
}

func init() {
	sort.SliceStable(suffixRules, func(i, j int) bool { return len(suffixRules[i].suffix) > len(suffixRules[j].suffix) })
}

var (
	kohyaOFTIndexed = regexp.MustCompile(`^(.+)\.oft_blocks\.(\d+)$`)
	cloneofsimoKey  = regexp.MustCompile(`^(unet|text_encoder):(\d+):(up|down)$`)
	xlabsKey        = regexp.MustCompile(`^(.*?)\.processor\.(qkv_lora1|qkv_lora2|proj_lora1|proj_lora2|qkv_lora|proj_lora)\.(down|up)\.weight$`)
)

// xlabsModules renames XLabs / USO processor LoRA names to BFL modules
// (comfyui-lora.md §1.5).
var xlabsModules = map[string]string{
	"qkv_lora1": "img_attn.qkv", "qkv_lora2": "txt_attn.qkv",
	"proj_lora1": "img_attn.proj", "proj_lora2": "txt_attn.proj",
	"qkv_lora": "linear1_qkv", "proj_lora": "linear2",
}

// ParsedKey is one tensor name split into module prefix and role.
type ParsedKey struct {
	Key        string
	Prefix     string
	Role       string
	Index      int    // kohya OFT "oft_blocks.N" index, else 0
	Convention string // suffix family ("kohya", "peft", "xlabs", "cloneofsimo", "nonstandard", ...)
}

// ParseKey splits a tensor name into its module prefix and adapter role.
// It does not know about IA3 ".weight" (see Group), embeddings or
// checkpoint keys; ok is false for names that carry no adapter suffix.
func ParseKey(key string) (ParsedKey, bool) {
	// the regular expressions only run for names that can match them
	if strings.Count(key, ":") != 2 {
		goto notCloneofsimo
	}
	if m := cloneofsimoKey.FindStringSubmatch(key); m != nil {
		return ParsedKey{Key: key, Prefix: m[1] + ":" + m[2], Role: map[string]string{"up": RoleUp, "down": RoleDown}[m[3]], Convention: "cloneofsimo"}, true
	}
notCloneofsimo:
	if !strings.Contains(key, ".processor.") {
		goto notXLabs
	}
	if m := xlabsKey.FindStringSubmatch(key); m != nil {
		role := RoleDown
		if m[3] == "up" {
			role = RoleUp
		}
		return ParsedKey{Key: key, Prefix: m[1] + "." + xlabsModules[m[2]], Role: role, Convention: "xlabs"}, true
	}
notXLabs:
	if !strings.Contains(key, ".oft_blocks.") {
		goto suffixes
	}
	if m := kohyaOFTIndexed.FindStringSubmatch(key); m != nil {
		n := 0
		for _, c := range m[2] {
			n = n*10 + int(c-'0')
			if n > 1<<20 {
				return ParsedKey{}, false
			}
		}
		return ParsedKey{Key: key, Prefix: m[1], Role: RoleOFTBlocks, Index: n, Convention: "kohya-oft"}, true
	}
suffixes:
	// LightX2V's Wan distillation LoRAs: "<block>.diff_m" is the full delta
	// of the block's raw "modulation" parameter [1, 6, dim]
	if p, ok := strings.CutSuffix(key, ".diff_m"); ok && p != "" {
		return ParsedKey{Key: key, Prefix: p + ".modulation", Role: RoleDiff, Convention: "lightx2v"}, true
	}
	for _, r := range suffixRules {
		if strings.HasSuffix(key, r.suffix) && len(key) > len(r.suffix) {
			return ParsedKey{Key: key, Prefix: key[:len(key)-len(r.suffix)], Role: r.role, Convention: r.convention}, true
		}
	}
	return ParsedKey{}, false
}
