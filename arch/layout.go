package arch

import (
	"fmt"
	"strings"
	"sync"
)

// reverse maps native module → its alias names (diffusers), per arch.
var (
	revMu sync.Mutex
	revs  = map[*Arch]map[string][]Alias{}
)

func (a *Arch) reverse() map[string][]Alias {
	revMu.Lock()
	defer revMu.Unlock()
	if r, ok := revs[a]; ok {
		return r
	}
	r := map[string][]Alias{}
	if a.Aliases != nil {
		for _, al := range a.Aliases() {
			r[al.Target] = append(r[al.Target], al)
		}
	}
	revs[a] = r
	return r
}

// DiffusersNames returns the foreign (diffusers) module names that address
// a native module, with their slices; a fused native weight has several
// (q, k, v ...). Empty when the native name is also the diffusers name.
func (a *Arch) DiffusersNames(module string) []Alias {
	return a.reverse()[module]
}

// Encoder returns the encoder with the given ComfyUI name.
func (a *Arch) Encoder(comfy string) (*Encoder, bool) {
	for i := range a.Encoders {
		if a.Encoders[i].Comfy == comfy {
			return &a.Encoders[i], true
		}
	}
	return nil, false
}

func flatten(s string) string { return strings.ReplaceAll(s, ".", "_") }

// LoRAPrefix names a target in one of the LoRA formats loratool writes:
//
//	kohya     lora_unet_<flattened name> / lora_te*_<flattened HF name>
//	          (diffusers names for SD1.x/SD2.x, as kohya's trainer writes)
//	comfy     diffusion_model.<native> / text_encoders.<te>.transformer.<HF>
//	diffusers <transformer.|unet.><diffusers name> / text_encoder(_2).<HF>
//	peft      base_model.model.<diffusers name> (diffusion model only)
//
// A sliced target (one of q/k/v in a fused weight) is named by its
// diffusers name in every format except comfy, which cannot address
// slices.
func (a *Arch) LoRAPrefix(t Target, format string) (string, error) {
	module := t.Module
	if t.Component != DiffusionModel {
		e, ok := a.Encoder(t.Component)
		if !ok {
			return "", fmt.Errorf("%s has no text encoder %s", a.ID, t.Component)
		}
		switch format {
		case "kohya":
			if len(e.Kohya) == 0 {
				return "", fmt.Errorf("kohya has no name for %s's %s", a.ID, e.Comfy)
			}
			return e.Kohya[len(e.Kohya)-1] + flatten(module), nil
		case "comfy":
			return "text_encoders." + e.Comfy + ".transformer." + module, nil
		case "diffusers", "peft":
			if len(e.Diffusers) == 0 {
				return "", fmt.Errorf("diffusers has no name for %s's %s", a.ID, e.Comfy)
			}
			return e.Diffusers[0] + module, nil
		}
		return "", fmt.Errorf("unknown LoRA format %q", format)
	}
	if name, ok := rawParamPrefix(a, t, format); ok {
		return name, nil
	}
	foreign := ""
	for _, al := range a.DiffusersNames(module) {
		if sameSlice(al.Slice, t.Slice) {
			foreign = al.Name
			break
		}
	}
	if t.Slice != nil && foreign == "" {
		return "", fmt.Errorf("no module name addresses rows %d..%d of %s", t.Slice.Offset, t.Slice.Offset+t.Slice.Size, module)
	}
	dname := foreign
	if dname == "" {
		dname = module
	}
	switch format {
	case "kohya":
		if t.Slice != nil || a.KohyaDiffusers {
			return "lora_unet_" + flatten(dname), nil
		}
		return "lora_unet_" + flatten(module), nil
	case "comfy":
		if t.Slice != nil {
			return "", fmt.Errorf("the comfy format cannot address a slice of %s", module)
		}
		return "diffusion_model." + module, nil
	case "diffusers":
		p := "transformer."
		if len(a.DiffusersPrefixes) > 0 {
			p = a.DiffusersPrefixes[0]
		}
		return p + dname, nil
	case "peft":
		return "base_model.model." + dname, nil
	}
	return "", fmt.Errorf("unknown LoRA format %q", format)
}

// Placement is where a target's weight lives in a checkpoint file.
type Placement struct {
	Key        string // tensor name in the file
	Slice      *Slice // rows of that tensor (nil: all)
	Transposed bool   // stored transposed (open_clip text_projection)
}

// Locate finds a target's weight in a checkpoint whose layout
// DetectCheckpoint described; param overrides the target's parameter
// (e.g. the ".bias" of the module for a bias delta; "" = t.Param).
func (a *Arch) Locate(t Target, info CheckpointInfo, param string) (Placement, error) {
	if param == "" {
		param = t.Param
	}
	if t.Component == DiffusionModel {
		switch info.Layout {
		case "diffusers":
			mod, suffix, ok := ModuleOf(param)
			if !ok {
				return Placement{}, fmt.Errorf("%s has no diffusers name", param)
			}
			names := a.DiffusersNames(mod)
			if len(names) == 0 {
				return Placement{Key: param, Slice: t.Slice}, nil
			}
			for _, al := range names {
				if sameSlice(al.Slice, t.Slice) || (t.Slice == nil && len(names) == 1 && al.Slice == nil) {
					return Placement{Key: al.Name + "." + suffix}, nil
				}
			}
			return Placement{}, fmt.Errorf("%s is fused in loratool's tables but split in a diffusers file; merge into the single-file checkpoint instead", mod)
		default:
			return Placement{Key: info.DiffusionPrefix + param, Slice: t.Slice}, nil
		}
	}
	e, ok := a.Encoder(t.Component)
	if !ok {
		return Placement{}, fmt.Errorf("%s has no text encoder %s", a.ID, t.Component)
	}
	if info.Layout == "text-encoder" {
		// a standalone encoder file (diffusers text_encoder/, ComfyUI
		// models/clip): HF names without a prefix
		if len(info.Parts) == 1 && info.Parts[0] != e.Part {
			return Placement{}, fmt.Errorf("the file holds a %s text encoder, not %s", info.Parts[0], e.Part)
		}
		return Placement{Key: param, Slice: t.Slice}, nil
	}
	if e.Layout == LayoutOpenCLIP {
		name, sl, tr, err := OpenCLIPName(param, encoderWidthOf(e))
		if err != nil {
			return Placement{}, err
		}
		return Placement{Key: e.CheckpointPrefix + name, Slice: sl, Transposed: tr}, nil
	}
	return Placement{Key: e.CheckpointPrefix + param, Slice: t.Slice}, nil
}

func encoderWidthOf(e *Encoder) int64 {
	if e.Model == nil {
		return 0
	}
	return encoderWidth(e.Model(Full))
}

// KeyTargets maps a checkpoint tensor name back to the targets it holds
// (extract): one target for an ordinary weight, three for a fused
// open_clip in_proj (q, k, v thirds). ok is false for tensors outside the
// diffusion model and the known encoders.
func (a *Arch) KeyTargets(key string, info CheckpointInfo, shape []int64) ([]Target, bool) {
	if info.DiffusionPrefix != "" || info.Layout == "diffusion-model" {
		if rest, ok := strings.CutPrefix(key, info.DiffusionPrefix); ok {
			mod, _, ok := ModuleOf(rest)
			if !ok {
				mod = rest
			}
			return []Target{{Arch: a, Part: a.Part, Component: DiffusionModel, Module: mod, Param: rest, Shape: shape, Convention: "native"}}, true
		}
	}
	for i := range a.Encoders {
		e := &a.Encoders[i]
		rest, ok := strings.CutPrefix(key, e.CheckpointPrefix)
		if !ok || e.CheckpointPrefix == "" {
			continue
		}
		if e.Layout != LayoutOpenCLIP {
			mod, _, ok := ModuleOf(rest)
			if !ok {
				mod = rest
			}
			return []Target{{Arch: a, Part: e.Part, Component: e.Comfy, Module: mod, Param: rest, Shape: shape, Convention: "native"}}, true
		}
		// open_clip: find the HF parameters that live in this tensor
		var out []Target
		w := encoderWidthOf(e)
		for _, p := range e.Model(Full) {
			name, sl, _, err := OpenCLIPName(p.Name, w)
			if err != nil || name != rest {
				continue
			}
			mod, _, _ := ModuleOf(p.Name)
			if sl != nil && len(shape) > 0 {
				// widths from the file, so reduced-size models work too
				third := shape[0] / 3
				sl = &Slice{Offset: sl.Offset / sl.Size * third, Size: third}
			}
			out = append(out, Target{Arch: a, Part: e.Part, Component: e.Comfy, Module: mod, Param: p.Name, Shape: p.Shape, Slice: sl, Convention: "native"})
		}
		return out, len(out) > 0
	}
	return nil, false
}

// ScaleSlice maps a slice given for a parameter with fullRows rows onto
// the same fused weight with actualRows rows (reduced-size synthetic
// models, or variants with another width); the fused parts must scale
// proportionally.
func ScaleSlice(sl *Slice, fullRows, actualRows int64) (*Slice, error) {
	if sl == nil || fullRows == actualRows {
		return sl, nil
	}
	if fullRows <= 0 || (sl.Offset*actualRows)%fullRows != 0 || (sl.Size*actualRows)%fullRows != 0 {
		return nil, fmt.Errorf("rows %d..%d of a %d-row weight do not map onto %d rows", sl.Offset, sl.Offset+sl.Size, fullRows, actualRows)
	}
	return &Slice{Offset: sl.Offset * actualRows / fullRows, Size: sl.Size * actualRows / fullRows}, nil
}
