package merge

import (
	"fmt"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/lora"
)

// refuseOtherArch refuses, in one line, a LoRA whose own architecture
// differs from the checkpoint's when some of its tensors do not fit the
// checkpoint: merging the part that happens to match (same module names,
// e.g. SD2 on SD1) would bake the wrong architecture's weights. force
// (--force-arch) allows it; LoRAs whose names and shapes fit both
// architectures equally (fit.Also) are not refused.
func refuseOtherArch(path string, fit lora.Fit, base *arch.Arch, mismatched, force bool) error {
	if force || !mismatched || fit.Arch == nil || base == nil || fit.Arch == base {
		return nil
	}
	if fit.Confidence == "none" || len(fit.Unresolved) > 0 {
		return nil // the LoRA's own architecture does not explain it either
	}
	for _, a := range fit.Also {
		if a == base {
			return nil
		}
	}
	return fmt.Errorf("%s: a%s %s LoRA on a%s %s checkpoint; nothing written", path, article(fit.Arch.ID), fit.Arch.ID, article(base.ID), base.ID)
}
