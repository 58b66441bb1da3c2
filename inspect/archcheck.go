package inspect

import (
	"fmt"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/lora"
)

// forcedMismatch says so when --arch names another architecture than the
// one the file clearly is: the detected architecture fits and the forced
// one leaves modules unplaced. "" when --arch is plausible.
func forcedMismatch(an *lora.Analysis, forced *arch.Arch, fit lora.Fit) string {
	if forced == nil || len(fit.Unresolved) == 0 {
		return ""
	}
	own := an.FitArch(arch.All(), nil)
	if own.Arch == nil || own.Arch == forced || own.Confidence == "none" || len(own.Unresolved) > 0 {
		return ""
	}
	for _, a := range own.Also {
		if a == forced {
			return ""
		}
	}
	return fmt.Sprintf("--arch %s does not fit: this is a%s %s LoRA (%s); %d of %d modules have no %s counterpart", forced.ID, article(own.Arch.ID), own.Arch.ID, own.Evidence, len(fit.Unresolved), len(an.Modules), forced.ID)
}

func article(id string) string {
	if len(id) > 1 && id[0] == 's' && id[1] == 'd' {
		return "n"
	}
	return ""
}
