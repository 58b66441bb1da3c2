package merge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// encodeHashed encodes a merged LoRA's tensors and records the SHA-256 of
// the data section as sshs_model_hash and modelspec.hash_sha256 (as
// convert, resize and extract outputs carry), before the header is
// written.
func encodeHashed(specs []safetensors.TensorSpec, data map[string][]float32, meta map[string]string) (map[string][]byte, int, error) {
	enc := map[string][]byte{}
	clamped := 0
	h := sha256.New()
	for _, s := range safetensors.CanonicalOrder(specs) {
		vals := data[s.Name]
		b := make([]byte, len(vals)*s.DType.BitSize()/8)
		st, err := dtype.Encode(s.DType, vals, b)
		if err != nil {
			return nil, 0, fmt.Errorf("tensor %q: %v", s.Name, err)
		}
		clamped += st.Clamped
		enc[s.Name] = b
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	meta["sshs_model_hash"] = sum
	meta["modelspec.hash_sha256"] = "0x" + sum
	delete(meta, "sshs_legacy_hash")
	return enc, clamped, nil
}

// applied reports which strengths of input i the plan uses: the model
// strength when a patch reaches the diffusion model, the clip strength
// when one reaches a text encoder (not with --model-only or clip 0).
func (p *Plan) applied(i int) (model, clip bool) {
	for _, pt := range p.Patches {
		if pt.Input != i {
			continue
		}
		if pt.Target.Component == arch.DiffusionModel {
			model = true
		} else {
			clip = true
		}
	}
	return model, clip
}

// strengthsText is the dry-run's "strength model 0.8 clip 0.5", naming
// only the strengths that apply.
func (p *Plan) strengthsText(i int) string {
	in := p.Inputs[i]
	model, clip := p.applied(i)
	var parts []string
	if model || !clip {
		parts = append(parts, fmt.Sprintf("model %g", in.StrengthModel))
	}
	if clip {
		parts = append(parts, fmt.Sprintf("clip %g", in.StrengthClip))
	}
	s := "strength " + strings.Join(parts, " ")
	if !clip && p.hasTextEncoderModules(i) {
		s += " (text encoders not patched)"
	}
	return s
}

// hasTextEncoderModules reports whether input i has modules for a text
// encoder (applied or not).
func (p *Plan) hasTextEncoderModules(i int) bool {
	if i >= len(p.Analyses) {
		return false
	}
	for _, m := range p.Analyses[i].Modules {
		if m.Target != nil && m.Target.Component != arch.DiffusionModel {
			return true
		}
	}
	return false
}

// mergedFromEntry is one modelspec.merged_from item: title:model, plus
// :clip when the clip strength was applied (the --lora syntax).
func mergedFromEntry(title string, model float64, clip *float64) string {
	if clip == nil {
		return fmt.Sprintf("%s:%g", title, model)
	}
	return fmt.Sprintf("%s:%g:%g", title, model, *clip)
}

// appliedClip is the clip strength to record for input i: nil when no
// text encoder was patched.
func (p *Plan) appliedClip(i int) *float64 {
	if _, clip := p.applied(i); !clip {
		return nil
	}
	c := p.Inputs[i].StrengthClip
	return &c
}

// mergedFromClip is the clip strength merged_from shows for input i: the
// applied one, 0 when the LoRA has text-encoder modules that were not
// patched (model-only), nil when it has none.
func (p *Plan) mergedFromClip(i int) *float64 {
	if c := p.appliedClip(i); c != nil {
		return c
	}
	if p.hasTextEncoderModules(i) {
		z := 0.0
		return &z
	}
	return nil
}
