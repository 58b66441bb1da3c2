package merge

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/loratool/loratool/adapter"
	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// comfyState is a plan's ComfyUI-compatibility state.
type comfyState struct {
	// reshape: base tensors ComfyUI zero-pads to a larger shape before
	// patching (BFL control LoRAs' img_in), by tensor name.
	reshape  map[string][]int64
	peftDoRA bool
}

// comfyIgnoredReason is lora.ComfyIgnoredReason; (IA)³ is decided by the
// algorithm merge applies.
func comfyIgnoredReason(a *arch.Arch, m *lora.Module, algo string) string {
	if algo == "ia3" {
		return "(IA)³ is not a ComfyUI adapter"
	}
	return lora.ComfyIgnoredReason(a, m)
}

// isPEFTMagnitude reports whether the module's DoRA magnitude is PEFT's
// lora_magnitude_vector (which ComfyUI does not load).
func isPEFTMagnitude(m *lora.Module) bool {
	t, ok := m.Tensors[lora.RoleDoRAScale]
	return ok && strings.HasSuffix(t.Key, ".lora_magnitude_vector")
}

// comfyPass runs after mapping: it lists what ComfyUI ignores (and, with
// ComfyExact, skips it) and records PEFT DoRA magnitudes ComfyUI ignores.
func (p *Plan) comfyPass(opt PlanOptions) {
	p.comfy.peftDoRA = opt.PEFTDoRA
	reasons := map[*lora.Module]string{}
	var kept []*Patch
	for _, pt := range p.Patches {
		r, seen := reasons[pt.Module]
		if !seen {
			r = comfyIgnoredReason(p.Arch, pt.Module, pt.Algo)
			reasons[pt.Module] = r
			if r != "" {
				for _, k := range sortedTensors(pt.Module) {
					is := Issue{Input: pt.Input, Key: k, Reason: "ComfyUI's LoraLoader ignores it: " + r}
					p.ComfyIgnored = append(p.ComfyIgnored, is)
					if opt.ComfyExact {
						p.Skipped = append(p.Skipped, is)
					}
				}
			} else if isPEFTMagnitude(pt.Module) && !opt.PEFTDoRA {
				k := pt.Module.Tensors[lora.RoleDoRAScale].Key
				p.Skipped = append(p.Skipped, Issue{Input: pt.Input, Key: k,
					Reason: "PEFT DoRA magnitude: ComfyUI ignores it and applies a plain LoRA (--peft-dora applies PEFT's DoRA)"})
			}
		}
		if r != "" && opt.ComfyExact {
			continue
		}
		kept = append(kept, pt)
	}
	p.Patches = kept
}

// isBFLControl reports whether a LoRA is a BFL Flux control LoRA
// (Depth/Canny), recognised as ComfyUI's lora_convert does.
func isBFLControl(lf *safetensors.File) bool {
	_, a := lf.Lookup("img_in.lora_A.weight")
	_, b := lf.Lookup("single_blocks.0.norm.key_norm.scale")
	return a && b
}

// noteReshape records, for a BFL control LoRA, the widened img_in shape
// ([out, in] of its LoRA) that ComfyUI zero-pads the base's img_in to
// (reshape_weight in comfy/lora_convert.py), whatever the strength.
func (p *Plan) noteReshape(lf *safetensors.File, in Input) {
	if !isBFLControl(lf) {
		return
	}
	// LoraLoader does nothing when both strengths are 0
	if in.StrengthModel == 0 && in.StrengthClip == 0 {
		return
	}
	a, _ := lf.Lookup("img_in.lora_A.weight")
	b, ok := lf.Lookup("img_in.lora_B.weight")
	if !ok || len(a.Shape) != 2 || len(b.Shape) != 2 {
		return
	}
	key := ""
	for _, k := range []string{"img_in.weight", "model.diffusion_model.img_in.weight"} {
		if _, ok := p.Base.Lookup(k); ok {
			key = k
			break
		}
	}
	if key == "" {
		return
	}
	t, _ := p.Base.Lookup(key)
	want := []int64{b.Shape[0], a.Shape[1]}
	if len(t.Shape) != 2 || want[0] < t.Shape[0] || want[1] < t.Shape[1] || (want[0] == t.Shape[0] && want[1] == t.Shape[1]) {
		return
	}
	if p.comfy.reshape == nil {
		p.comfy.reshape = map[string][]int64{}
	}
	if old := p.comfy.reshape[key]; old != nil {
		want = []int64{max(old[0], want[0]), max(old[1], want[1])}
	}
	p.comfy.reshape[key] = want
	p.Warnings = append(p.Warnings, "BFL control LoRA: "+key+" is zero-padded to the LoRA's width, as ComfyUI does")
}

// reshaped returns ti with its padded shape when ComfyUI pads it.
func (p *Plan) reshaped(ti *safetensors.TensorInfo) *safetensors.TensorInfo {
	if s := p.comfy.reshape[ti.Name]; s != nil {
		c := *ti
		c.Shape = s
		return &c
	}
	return ti
}

// outShape is a base tensor's shape in the output.
func (p *Plan) outShape(t safetensors.TensorInfo) []int64 {
	if s := p.comfy.reshape[t.Name]; s != nil {
		return s
	}
	return t.Shape
}

func numel(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// pad zero-pads w to the tensor's output shape (2-D, top-left aligned, as
// comfy.weight_adapter.base.pad_tensor_to_shape).
func (p *Plan) pad(t safetensors.TensorInfo, w *adapter.Tensor) *adapter.Tensor {
	s := p.comfy.reshape[t.Name]
	if s == nil || len(w.Shape) != 2 {
		return w
	}
	r, c := int(s[0]), int(s[1])
	out := &adapter.Tensor{Shape: []int{r, c}, Data: getF32(r * c)}
	clear(out.Data)
	for i := 0; i < w.Shape[0]; i++ {
		copy(out.Data[i*c:i*c+w.Shape[1]], w.Data[i*w.Shape[1]:(i+1)*w.Shape[1]])
	}
	putF32(w.Data)
	return out
}

// WriteComfyIgnored tells the user which LoRA tensors ComfyUI's
// LoraLoader would not load: loratool applies them (or, with
// --comfy-exact, skips them as ComfyUI does).
func WriteComfyIgnored(w io.Writer, p *Plan, exact bool) {
	if len(p.ComfyIgnored) == 0 {
		return
	}
	if exact {
		fmt.Fprintf(w, "ComfyUI's LoraLoader ignores these %d keys; skipped, as ComfyUI does:\n", len(p.ComfyIgnored))
	} else {
		fmt.Fprintf(w, "ComfyUI's LoraLoader ignores these %d keys; loratool applies them (a ComfyUI workflow with this LoRA renders differently; --comfy-exact skips them):\n", len(p.ComfyIgnored))
	}
	for _, is := range p.ComfyIgnored {
		fmt.Fprintf(w, "  [%s] %s: %s\n", filepath.Base(p.Inputs[is.Input].Path), is.Key, strings.TrimPrefix(is.Reason, "ComfyUI's LoraLoader ignores it: "))
	}
}
