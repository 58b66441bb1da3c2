package workflow

// Facts about ComfyUI core nodes (nodes.py and comfy_extras). In the UI
// format widget values are stored positionally in "widgets_values", in the
// order of the node's widget inputs; the API format stores them by name.

// widgetIndex maps node type → widget name → index in widgets_values.
var widgetIndex = map[string]map[string]int{
	"LoraLoader":                {"lora_name": 0, "strength_model": 1, "strength_clip": 2},
	"LoraLoaderModelOnly":       {"lora_name": 0, "strength_model": 1},
	"CheckpointLoaderSimple":    {"ckpt_name": 0},
	"CheckpointLoader":          {"config_name": 0, "ckpt_name": 1},
	"unCLIPCheckpointLoader":    {"ckpt_name": 0},
	"ImageOnlyCheckpointLoader": {"ckpt_name": 0},
	"UNETLoader":                {"unet_name": 0, "weight_dtype": 1},
	"VAELoader":                 {"vae_name": 0},
	"CLIPLoader":                {"clip_name": 0, "type": 1, "device": 2},
	"DualCLIPLoader":            {"clip_name1": 0, "clip_name2": 1, "type": 2, "device": 3},
	"TripleCLIPLoader":          {"clip_name1": 0, "clip_name2": 1, "clip_name3": 2},
	"QuadrupleCLIPLoader":       {"clip_name1": 0, "clip_name2": 1, "clip_name3": 2, "clip_name4": 3},
	"CLIPTextEncode":            {"text": 0},
	"CLIPTextEncodeFlux":        {"clip_l": 0, "t5xxl": 1, "guidance": 2},
	"CLIPTextEncodeSD3":         {"clip_l": 0, "clip_g": 1, "t5xxl": 2, "empty_padding": 3},
	"CLIPTextEncodeSDXL": {"width": 0, "height": 1, "crop_w": 2, "crop_h": 3,
		"target_width": 4, "target_height": 5, "text_g": 6, "text_l": 7},
	"CLIPTextEncodeSDXLRefiner": {"ascore": 0, "width": 1, "height": 2, "text": 3},
	"CLIPTextEncodeHunyuanDiT":  {"bert": 0, "mt5xl": 1},
}

// outputCount is the number of outputs of known node types, used to check
// API-format references (the API format does not list outputs).
var outputCount = map[string]int{
	"LoraLoader":                2,
	"LoraLoaderModelOnly":       1,
	"CheckpointLoaderSimple":    3,
	"CheckpointLoader":          3,
	"unCLIPCheckpointLoader":    4,
	"ImageOnlyCheckpointLoader": 3,
	"UNETLoader":                1,
	"CLIPLoader":                1,
	"DualCLIPLoader":            1,
	"TripleCLIPLoader":          1,
	"QuadrupleCLIPLoader":       1,
	"CLIPTextEncode":            1,
	"CLIPSetLastLayer":          1,
}

// Base kinds.
const (
	// KindCheckpoint is a full checkpoint loader (MODEL, CLIP, VAE).
	KindCheckpoint = "checkpoint"
	// KindDiffusionModel is a diffusion-model-only loader (UNETLoader).
	KindDiffusionModel = "diffusion_model"
)

// modelLoader describes a node that loads the base model.
type modelLoader struct {
	kind     string
	nameKey  string // widget holding the file name
	clipSlot int    // output slot of CLIP, -1 if none
}

var modelLoaders = map[string]modelLoader{
	"CheckpointLoaderSimple":    {KindCheckpoint, "ckpt_name", 1},
	"CheckpointLoader":          {KindCheckpoint, "ckpt_name", 1},
	"unCLIPCheckpointLoader":    {KindCheckpoint, "ckpt_name", 1},
	"ImageOnlyCheckpointLoader": {KindCheckpoint, "ckpt_name", -1},
	"UNETLoader":                {KindDiffusionModel, "unet_name", -1},
}

// clipLoaders maps text-encoder loader types to their file-name widgets.
var clipLoaders = map[string][]string{
	"CLIPLoader":          {"clip_name"},
	"DualCLIPLoader":      {"clip_name1", "clip_name2"},
	"TripleCLIPLoader":    {"clip_name1", "clip_name2", "clip_name3"},
	"QuadrupleCLIPLoader": {"clip_name1", "clip_name2", "clip_name3", "clip_name4"},
}

// promptFields lists the text widgets of known text encoders. Encoders not
// listed contribute their "text" input when it is stored by name (API
// format or object-valued widgets_values).
var promptFields = map[string][]string{
	"CLIPTextEncode":            {"text"},
	"CLIPTextEncodeFlux":        {"clip_l", "t5xxl"},
	"CLIPTextEncodeSD3":         {"clip_l", "clip_g", "t5xxl"},
	"CLIPTextEncodeSDXL":        {"text_g", "text_l"},
	"CLIPTextEncodeSDXLRefiner": {"text"},
	"CLIPTextEncodeHunyuanDiT":  {"bert", "mt5xl"},
}

// knownSamplers are sampler node types; other types whose name contains
// "KSampler" and that take a "model" input are treated as samplers too.
var knownSamplers = map[string]bool{
	"KSampler":              true,
	"KSamplerAdvanced":      true,
	"SamplerCustom":         true,
	"SamplerCustomAdvanced": true,
}
