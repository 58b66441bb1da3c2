package gguf

import (
	"fmt"
	"path"
	"strings"
)

// ComfyUI-GGUF conventions: architecture ids, file types and the policy
// that decides each tensor's type when quantizing a diffusion model.

// comfyArch maps loratool's architecture ids to the general.architecture
// values ComfyUI-GGUF's loader accepts (its fixed IMG_ARCH_LIST).
var comfyArch = map[string]string{
	"flux1": "flux", "chroma": "flux", "flux2": "flux",
	"sd1": "sd1", "sd2": "sd1", "sdxl": "sdxl", "sdxl-refiner": "sdxl",
	"sd3": "sd3", "auraflow": "aura", "hidream": "hidream", "ltxv": "ltxv",
	"hunyuan-video": "hyvid", "wan": "wan", "lumina2": "lumina2", "z-image": "lumina2",
	"qwen-image": "qwen_image",
}

// ComfyArch returns the general.architecture id ComfyUI-GGUF expects for
// a loratool architecture id.
func ComfyArch(archID string) (string, bool) {
	a, ok := comfyArch[archID]
	return a, ok
}

// keepFloat lists, per general.architecture id, name fragments of tensors
// that are never quantized (the input/output and embedding layers the
// llama.cpp image-model patch of ComfyUI-GGUF keeps). A leading "=" means
// the whole name must match.
var keepFloat = map[string][]string{
	"flux":       {"txt_in.", "img_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer."},
	"sd1":        {"class_embedding.", "time_embedding.", "add_embedding.", "time_embed.", "label_emb.", "conv_in.", "conv_out.", "=input_blocks.0.0.weight", "=out.2.weight"},
	"sdxl":       {"class_embedding.", "time_embedding.", "add_embedding.", "time_embed.", "label_emb.", "conv_in.", "conv_out.", "=input_blocks.0.0.weight", "=out.2.weight"},
	"sd3":        {"final_layer.", "time_text_embed.", "context_embedder.", "t_embedder.", "y_embedder.", "x_embedder.", "=proj_out.weight", "=pos_embed"},
	"aura":       {"t_embedder.", "init_x_linear.", "=modF.1.weight", "=cond_seq_linear.weight", "=final_linear.weight", "=positional_encoding", "=register_tokens"},
	"ltxv":       {"adaln_single.", "caption_projection.", "patchify_proj.", "proj_out.", "scale_shift_table"},
	"hyvid":      {"txt_in.", "img_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer."},
	"wan":        {"modulation.", "patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.", "img_emb.", "head."},
	"hidream":    {"p_embedder.", "t_embedder.", "x_embedder.", "final_layer.", ".ff_i.gate.weight", "caption_projection."},
	"cosmos":     {"p_embedder.", "t_embedder.", "t_embedding_norm.", "x_embedder.", "pos_embedder.", "final_layer."},
	"lumina2":    {"t_embedder.", "x_embedder.", "final_layer.", "cap_embedder.", "context_refiner.", "noise_refiner."},
	"qwen_image": {"img_in.", "txt_in.", "txt_norm.", "time_text_embed.", "norm_out.", "proj_out."},
}

// highPrecision lists name fragments ComfyUI-GGUF's converter keeps in F32
// (parameters ComfyUI cannot load from a lower precision).
var highPrecision = map[string][]string{
	"hidream": {".ff_i.gate.weight", "img_emb.emb_pos"},
	"cosmos":  {"pos_embedder"},
	"wan":     {".modulation"},
	"ltxv":    {"scale_shift_table"},
}

func matchAny(name string, frags []string) bool {
	for _, f := range frags {
		if w, ok := strings.CutPrefix(f, "="); ok {
			if name == w {
				return true
			}
		} else if strings.Contains(name, f) {
			return true
		}
	}
	return false
}

// QuantRule is one --quant-map entry: tensors whose name matches Glob
// (path.Match syntax; "*" also crosses dots) get Type.
type QuantRule struct {
	Glob string
	Type Type
}

// ParseQuantMap parses "GLOB=TYPE,GLOB=TYPE".
func ParseQuantMap(s string) ([]QuantRule, error) {
	var rules []QuantRule
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		g, t, ok := strings.Cut(part, "=")
		if !ok || g == "" {
			return nil, fmt.Errorf("--quant-map entry %q is not GLOB=TYPE", part)
		}
		typ, err := ParseType(t)
		if err != nil {
			return nil, err
		}
		if !typ.CanQuantize() {
			return nil, fmt.Errorf("--quant-map entry %q: %v cannot be written", part, typ)
		}
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("--quant-map entry %q: bad pattern", part)
		}
		rules = append(rules, QuantRule{Glob: g, Type: typ})
	}
	return rules, nil
}

// Policy decides tensor types when writing a diffusion model as GGUF.
type Policy struct {
	Arch  string // general.architecture id
	Quant Type   // the type of quantizable tensors
	Map   []QuantRule
}

// Choice is the decision for one tensor.
type Choice struct {
	Type Type
	// Shape is the shape stored in the file (PyTorch order); OrigShape is
	// non-nil when it differs from the model's (comfy.gguf.orig_shape).
	Shape, OrigShape []int64
	Reason           string
}

// Choose returns the type and stored shape of tensor name with PyTorch
// shape shape, whose source is float type src (F32, F16 or BF16; fp8
// sources count as F16), following ComfyUI-GGUF's converter and its
// llama.cpp quantization patch:
//   - F32/BF16 sources: 1-D tensors, tensors of at most 1024 elements and
//     the architecture's high-precision parameters become F32; other
//     tensors stay BF16 (from BF16) or become F16;
//   - SD1/SDXL tensors whose last dimension is not a multiple of 256 are
//     stored reshaped to (n/256, 256) with their original shape recorded;
//   - only 2-D ".weight" tensors larger than 1024 elements outside the
//     architecture's keep list are quantized; a row length that is not a
//     multiple of the type's block size falls back to F16;
//   - a matching --quant-map rule wins over all of this.
func (p Policy) Choose(name string, src Type, shape []int64) (Choice, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	c := Choice{Shape: shape}
	float := F16
	if src == BF16 {
		float = BF16
	}
	if (src == F32 || src == BF16) && (len(shape) <= 1 || n <= 1024 || matchAny(name, highPrecision[p.Arch])) {
		float = F32
	}
	if (p.Arch == "sd1" || p.Arch == "sdxl") && len(shape) > 1 && n >= 512 && n%256 == 0 && shape[len(shape)-1]%256 != 0 {
		c.OrigShape, c.Shape = shape, []int64{n / 256, 256}
	}
	for _, r := range p.Map {
		if globMatch(r.Glob, name) {
			c.Type, c.Reason = r.Type, "--quant-map "+r.Glob
			if err := fits(c); err != nil {
				return c, fmt.Errorf("tensor %s: %v", name, err)
			}
			return c, nil
		}
	}
	c.Type, c.Reason = float, "kept float"
	switch {
	case !strings.HasSuffix(name, "weight"):
		c.Reason = "not a weight"
	case ggmlDims(c.Shape) != 2:
		c.Reason = "not 2-D"
	case n <= 1024:
		c.Reason = "small"
	case float == F32:
		c.Reason = "high precision"
	case matchAny(name, keepFloat[p.Arch]):
		c.Reason = "input/output layer"
	default:
		c.Type, c.Reason = p.Quant, "quantized"
		if fits(c) != nil {
			c.Type, c.Reason = F16, "row not a multiple of the block size"
		}
	}
	return c, nil
}

// ggmlDims is ggml_n_dims: the number of dimensions up to the last one
// larger than 1 (trailing ones in ggml order, leading in PyTorch order).
func ggmlDims(shape []int64) int {
	for i, d := range shape {
		if d > 1 {
			return len(shape) - i
		}
	}
	return 1
}

func fits(c Choice) error {
	row := c.Shape[len(c.Shape)-1]
	if bs := int64(c.Type.BlockSize()); row%bs != 0 {
		return fmt.Errorf("rows of %d elements are not a multiple of the %v block size %d", row, c.Type, bs)
	}
	return nil
}

// globMatch matches name against a --quant-map glob; "*" matches any
// run of characters, dots included.
func globMatch(glob, name string) bool {
	if ok, _ := path.Match(glob, name); ok {
		return true
	}
	ok, _ := path.Match(strings.ReplaceAll(glob, ".", "\x00"), strings.ReplaceAll(name, ".", "\x00"))
	return ok
}

// FileType returns the llama.cpp general.file_type value for a file whose
// quantized tensors are of type t (uniform K quants are the _S variants).
func FileType(t Type) uint32 {
	switch t {
	case F32:
		return 0
	case F16:
		return 1
	case Q4_0:
		return 2
	case Q4_1:
		return 3
	case Q8_0:
		return 7
	case Q5_0:
		return 8
	case Q5_1:
		return 9
	case Q2_K:
		return 10
	case Q3_K:
		return 11
	case Q4_K:
		return 14
	case Q5_K:
		return 16
	case Q6_K:
		return 18
	case BF16:
		return 32
	}
	return 0
}

// QuantizationVersion is ggml's GGML_QNT_VERSION, written as
// general.quantization_version.
const QuantizationVersion = 2
