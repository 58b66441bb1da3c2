package merge

import (
	"fmt"
	"math"

	"github.com/loratool/loratool/dtype"
)

// LossWarnAt is the share of the LoRA's change lost to the output dtype's
// rounding from which merge warns.
const LossWarnAt = 0.05

// dtypeName is the name users know a dtype by (fp8, bf16, fp16, fp32).
func dtypeName(d dtype.DType) string {
	switch d {
	case dtype.F8E4M3:
		return "fp8"
	case dtype.F8E5M2:
		return "fp8_e5m2"
	case dtype.BF16:
		return "bf16"
	case dtype.F16:
		return "fp16"
	case dtype.F32:
		return "fp32"
	}
	return d.String()
}

// keptLost returns the rounded percentages of the LoRA's change kept and
// lost by the output dtype (from the relative error of the stored delta).
func keptLost(relErr float64) (kept, lost int) {
	lost = int(math.Round(100 * math.Min(relErr, 1)))
	return 100 - lost, lost
}

// LossLine says how much of the LoRA's change survived the output dtype,
// the way a user thinks of it: "kept 66% of the LoRA's change; fp8
// rounding lost 34%".
func LossLine(rep *Report) string {
	if rep.DeltaError == 0 {
		return "kept all of the LoRA's change (no rounding loss)"
	}
	kept, lost := keptLost(rep.DeltaError)
	name := rep.LossDType
	if name == "" {
		name = "output dtype"
	}
	s := fmt.Sprintf("kept %d%% of the LoRA's change; %s rounding lost %d%%", kept, name, lost)
	if 100*rep.DeltaError < 1 {
		s = fmt.Sprintf("kept over 99%% of the LoRA's change; %s rounding lost %.2g%%", name, 100*rep.DeltaError)
	}
	if rep.WorstTensor != "" && rep.WorstDeltaError > rep.DeltaError {
		s += fmt.Sprintf(" (most in %s: %.0f%%)", rep.WorstTensor, 100*math.Min(rep.WorstDeltaError, 1))
	}
	return s
}

// lossWarning warns from LossWarnAt lost, with the fix: a wider dtype, or
// a scaled-fp8 base (whose per-tensor scales follow the merged weights);
// a scaled-fp8 base already has them and cannot change dtype.
func lossWarning(rep *Report, scaledBase bool) string {
	if rep.DeltaError < LossWarnAt {
		return ""
	}
	_, lost := keptLost(rep.DeltaError)
	fix := "use --dtype bf16 (or fp16) for the output"
	if scaledBase {
		fix = "the scaled-fp8 output already has per-tensor scales (its dtype cannot change); to keep more, merge into a bf16 or fp16 version of the checkpoint"
	} else if rep.LossDType == "fp8" || rep.LossDType == "fp8_e5m2" {
		fix = "use --dtype bf16 for the output, or merge into a scaled-fp8 version of the checkpoint (per-tensor scales keep small changes)"
	}
	return fmt.Sprintf("%s rounding lost %d%% of the LoRA's change; %s", orDefault(rep.LossDType, "the output dtype's"), lost, fix)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
