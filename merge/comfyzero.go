package merge

import "github.com/loratool/loratool/arch"

// loaderInput is the input as ComfyUI's loader node sees it:
// LoraLoaderModelOnly (--model-only) has no clip strength.
func loaderInput(in Input, opt PlanOptions) Input {
	if opt.ModelOnly {
		in.StrengthClip = 0
	}
	return in
}

// zeroStrengthSkip says why a module is skipped at strength 0, or "" when
// it is applied. ComfyUI's LoraLoader does nothing only when both
// strengths are 0; otherwise every patch is registered, and at strength 0
// the additive ones add nothing while set_weight still replaces the weight
// (calculate_weight copies it regardless of strength). loratool does the
// same: only set_weight modules survive a zero strength.
func zeroStrengthSkip(t arch.Target, algo string, in Input) string {
	strength, what := in.StrengthModel, "diffusion model (model strength 0)"
	if t.Component != arch.DiffusionModel {
		strength, what = in.StrengthClip, "text encoder "+t.Component+" (clip strength 0)"
	}
	if strength != 0 {
		return ""
	}
	if algo == "set" && (in.StrengthModel != 0 || in.StrengthClip != 0) {
		return ""
	}
	return what
}
