// Package arch is loratool's architecture registry: one file per model
// family, each holding the family's detection rules and its name tables
// (native parameter list, diffusers aliases, text encoders, checkpoint
// layout). inspect, merge, convert and extract all read key knowledge from
// here and nowhere else.
package arch

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Part is a component of a diffusion model, in inspect's "targets"
// vocabulary.
type Part string

// The parts of a model.
const (
	UNet  Part = "unet"
	DiT   Part = "dit"
	CLIPL Part = "clip-l"
	CLIPG Part = "clip-g"
	CLIPH Part = "clip-h"
	T5    Part = "t5"
	LLM   Part = "llm"
	VAE   Part = "vae"
)

// Size selects the dimensions a parameter generator produces.
type Size int

const (
	// Full is the real model's dimensions.
	Full Size = iota
	// Tiny keeps every name and the block structure but shrinks widths so
	// that a whole synthetic checkpoint is a few megabytes (unit tests).
	Tiny
)

// Param is one parameter tensor of a component, in the component's native
// naming (ComfyUI's internal names, relative to the component root: for a
// diffusion model without the "diffusion_model." prefix).
type Param struct {
	Name  string
	Shape []int64
	// DType is the safetensors dtype name for tensors that are not stored
	// in the model's weight dtype (e.g. "I64" position ids); "" otherwise.
	DType string
}

// Slice selects rows [Offset, Offset+Size) along dim 0 of a fused weight.
type Slice struct {
	Offset, Size int64
}

// Alias maps a foreign (diffusers / trainer-specific) module path onto a
// native module path of the same component.
type Alias struct {
	Name           string // foreign module path, e.g. "transformer_blocks.0.attn.to_q"
	Target         string // native module path, e.g. "double_blocks.0.img_attn.qkv"
	Slice          *Slice // nil: the whole weight
	SwapScaleShift bool   // the two halves of dim 0 are stored swapped (diffusers norm_out)
}

// Layout is how a component's parameters are stored in a single-file
// checkpoint.
type Layout int

const (
	// LayoutNative stores native names under the prefix unchanged.
	LayoutNative Layout = iota
	// LayoutOpenCLIP stores an HF-named CLIP in open_clip layout
	// (resblocks, fused attn.in_proj_weight, transposed text_projection).
	LayoutOpenCLIP
)

// Encoder declares one text encoder an architecture uses.
type Encoder struct {
	Part  Part   // clip-l, clip-g, clip-h, t5, llm
	Comfy string // ComfyUI's internal name: "clip_l", "clip_g", "clip_h", "t5xxl", ...
	// Kohya lists the kohya-style flattened prefixes that address this
	// encoder in this architecture ("lora_te_", "lora_te1_", ...).
	Kohya []string
	// Diffusers lists dotted prefixes of diffusers/PEFT LoRAs
	// ("text_encoder.", "text_encoder_2.").
	Diffusers []string
	// Model generates the encoder's parameters (HF naming, e.g.
	// "text_model.encoder.layers.0.self_attn.q_proj.weight").
	Model func(Size) []Param
	// CheckpointPrefix is where the encoder lives in this architecture's
	// single-file checkpoints; Layout says how it is stored there.
	CheckpointPrefix string
	Layout           Layout
}

// View is what detection sees of a checkpoint: its tensor names (with any
// diffusion-model prefix removed) and their shapes.
type View interface {
	Has(name string) bool
	Shape(name string) []int64 // nil when absent
	// Count returns the number of distinct integers N for which some key
	// starts with prefix+N+".".
	Count(prefix string) int
}

// Arch is one architecture of the registry.
type Arch struct {
	ID       string // inspect vocabulary: sd1, sd2, sdxl, ...
	Name     string // human name
	Part     Part   // UNet or DiT
	Priority int    // among candidates that fit equally well, lower wins
	// Params generates the diffusion model's parameters in native naming.
	Params func(Size) []Param
	// Aliases generates the diffusers (and other foreign) module names.
	Aliases func() []Alias
	// DiffusersPrefixes are the dotted prefixes diffusers/PEFT LoRAs put in
	// front of alias names ("unet.", "transformer.").
	DiffusersPrefixes []string
	// KohyaDiffusers is true when kohya's trainer names this model's
	// modules by their diffusers paths (SD1.x, SD2.x) rather than native.
	KohyaDiffusers bool
	Encoders       []Encoder
	// DiffusionPrefix is the diffusion model's prefix inside single-file
	// checkpoints ("model.diffusion_model."); VAEPrefix the VAE's.
	DiffusionPrefix string
	VAEPrefix       string
	// VAE generates the autoencoder's parameters (nil: none known).
	VAE func(Size) []Param
	// Extras generates other tensors single-file checkpoints carry, with
	// their full file names (noise-schedule buffers, markers).
	Extras func(Size) []Param
	// Detect decides from a checkpoint's diffusion-model keys whether it is
	// this architecture; evidence names the decisive keys and shapes.
	Detect func(v View) (ok bool, evidence string)
	// Indexed lists, for cloneofsimo-format LoRAs ("unet:N:up"), the module
	// prefixes in the order that format numbers them, per kind ("unet",
	// "text_encoder"); nil when the format does not exist for the model.
	Indexed func(kind string) []string
	// ModelSpec is the modelspec.architecture value (without "/lora");
	// KohyaVersion the ss_base_model_version value.
	ModelSpec    string
	KohyaVersion string
}

var (
	regMu    sync.Mutex
	registry []*Arch
)

// Register adds an architecture; each architecture file calls it from init.
func Register(a *Arch) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, b := range registry {
		if b.ID == a.ID {
			panic(fmt.Sprintf("arch: %s registered twice", a.ID))
		}
	}
	registry = append(registry, a)
	sort.SliceStable(registry, func(i, j int) bool {
		if registry[i].Priority != registry[j].Priority {
			return registry[i].Priority < registry[j].Priority
		}
		return registry[i].ID < registry[j].ID
	})
}

// All returns every registered architecture, most preferred first.
func All() []*Arch {
	regMu.Lock()
	defer regMu.Unlock()
	return append([]*Arch(nil), registry...)
}

// ByID returns the architecture with the given id.
func ByID(id string) (*Arch, bool) {
	for _, a := range All() {
		if a.ID == id {
			return a, true
		}
	}
	return nil, false
}

// IDs returns the registered ids, sorted.
func IDs() []string {
	var ids []string
	for _, a := range All() {
		ids = append(ids, a.ID)
	}
	sort.Strings(ids)
	return ids
}

// ModuleOf strips a parameter suffix (".weight", ".bias", ".scale") and
// returns the module path; ok is false for other parameters.
func ModuleOf(param string) (module, suffix string, ok bool) {
	for _, s := range []string{".weight", ".bias", ".scale"} {
		if strings.HasSuffix(param, s) {
			return strings.TrimSuffix(param, s), s[1:], true
		}
	}
	return param, "", false
}

func itoa(n int64) string { return fmt.Sprint(n) }
