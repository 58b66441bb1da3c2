package inspect

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loratool/loratool/lora"
)

// comfyIgnored names the LoRA keys that loratool applies but ComfyUI's
// LoraLoader does not load (lora.ComfyIgnoredReason), with one warning
// that gives the count and the reasons.
func comfyIgnored(r *Report, an *lora.Analysis, fit lora.Fit) {
	reasons := map[string]int{}
	var order []string
	for _, m := range an.Modules {
		if m.Target == nil {
			continue
		}
		why := lora.ComfyIgnoredReason(fit.Arch, m)
		if why == "" {
			continue
		}
		for _, t := range m.Tensors {
			r.ComfyIgnores = append(r.ComfyIgnores, t.Key)
		}
		if reasons[why] == 0 {
			order = append(order, why)
		}
		reasons[why] += len(m.Tensors)
	}
	if len(r.ComfyIgnores) == 0 {
		return
	}
	sort.Strings(r.ComfyIgnores)
	var parts []string
	for _, w := range order {
		parts = append(parts, fmt.Sprintf("%d: %s", reasons[w], w))
	}
	r.Warnings = append(r.Warnings, fmt.Sprintf("ComfyUI's LoraLoader ignores these %d keys; loratool applies them (%s)", len(r.ComfyIgnores), strings.Join(parts, "; ")))
}
