package merge

import "testing"

func TestLossWording(t *testing.T) {
	for _, c := range []struct {
		rep    Report
		scaled bool
		line   string
		warn   string
	}{
		{Report{DeltaError: 0.3386, LossDType: "fp8"}, false,
			"kept 66% of the LoRA's change; fp8 rounding lost 34%",
			"fp8 rounding lost 34% of the LoRA's change; use --dtype bf16 for the output, or merge into a scaled-fp8 version of the checkpoint (per-tensor scales keep small changes)"},
		{Report{DeltaError: 0.0072, LossDType: "fp16"}, false,
			"kept over 99% of the LoRA's change; fp16 rounding lost 0.72%", ""},
		{Report{DeltaError: 0.049, LossDType: "bf16"}, false,
			"kept 95% of the LoRA's change; bf16 rounding lost 5%", ""},
		{Report{DeltaError: 0.05, LossDType: "fp8"}, true,
			"kept 95% of the LoRA's change; fp8 rounding lost 5%",
			"fp8 rounding lost 5% of the LoRA's change; the scaled-fp8 output already has per-tensor scales (its dtype cannot change); to keep more, merge into a bf16 or fp16 version of the checkpoint"},
		{Report{DeltaError: 1.7, LossDType: "fp8"}, false,
			"kept 0% of the LoRA's change; fp8 rounding lost 100%",
			"fp8 rounding lost 100% of the LoRA's change; use --dtype bf16 for the output, or merge into a scaled-fp8 version of the checkpoint (per-tensor scales keep small changes)"},
		{Report{}, false, "kept all of the LoRA's change (no rounding loss)", ""},
	} {
		if got := LossLine(&c.rep); got != c.line {
			t.Errorf("LossLine(%v) = %q, want %q", c.rep.DeltaError, got, c.line)
		}
		if got := lossWarning(&c.rep, c.scaled); got != c.warn {
			t.Errorf("lossWarning(%v) = %q, want %q", c.rep.DeltaError, got, c.warn)
		}
	}
}
