package lora

import (
	"fmt"
	"strings"

	"github.com/loratool/loratool/adapter"
)

// ApplyAlgo returns the algorithm ComfyUI applies for the module's weight
// tensors, "last match wins" in its order (lora, loha, lokr, glora,
// oft/boft, ia3, then w_norm, diff, set), in adapter's vocabulary; "" when
// the module holds only bias deltas or nothing usable.
func (m *Module) ApplyAlgo() string {
	algo := ""
	if m.Has(RoleUp) && m.Has(RoleDown) {
		algo = "lora"
	}
	if m.Has("hada_w1_a") {
		algo = "loha"
	}
	if m.Has("lokr_w1") || m.Has("lokr_w1_a") || m.Has("lokr_w2") || m.Has("lokr_w2_a") {
		algo = "lokr"
	}
	if m.Has("a1") && m.Has("a2") && m.Has("b1") && m.Has("b2") {
		algo = "glora"
	}
	if t, ok := m.Tensors[RoleOFTBlocks]; ok {
		if len(t.Shape) == 4 {
			algo = "boft"
		} else {
			algo = "oft"
		}
	}
	if m.Has(RoleIA3Weight) {
		algo = "ia3"
	}
	if m.Has(RoleWNorm) {
		algo = "norm"
	}
	if m.Has(RoleDiff) {
		algo = "full"
	}
	if m.Has(RoleSetWeight) {
		algo = "set"
	}
	return algo
}

// ValidateShapes checks the module's tensor shapes, as declared in the
// file's header, against the rules of algo (see adapter.ValidateShapes)
// before anything is read or allocated. target is the weight the module
// patches, nil when unknown (then maxDense bounds the dense delta; ≤ 0
// means adapter.DefaultMaxDense). algo "" means ApplyAlgo. The error names
// the module and the rule broken.
func (m *Module) ValidateShapes(algo string, target []int64, maxDense int64) error {
	if algo == "" {
		algo = m.ApplyAlgo()
	}
	if algo == "" {
		return nil
	}
	shapes := make(map[string][]int, len(m.Tensors))
	for role, t := range m.Tensors {
		if role == RoleDiffB || role == RoleBNorm || strings.HasPrefix(role, RoleOFTBlocks+".") {
			continue
		}
		if role == RoleWNorm {
			role = adapter.RoleDiff
		}
		s := make([]int, len(t.Shape))
		for i, d := range t.Shape {
			if d < 0 || d > 1<<40 {
				return fmt.Errorf("module %s: %s: shape %v: dimension out of range", m.Prefix, t.Key, t.Shape)
			}
			s[i] = int(d)
		}
		shapes[role] = s
	}
	var tg []int
	if target != nil {
		tg = make([]int, len(target))
		for i, d := range target {
			tg[i] = int(d)
		}
	}
	dense, err := adapter.ValidateShapes(adapter.Algo(algo), shapes, tg, maxDense)
	if err != nil {
		return fmt.Errorf("module %s: %v", m.Prefix, err)
	}
	// without a weight, the architecture still knows the kernel: widths
	// vary between model sizes, kernels do not
	if tg == nil && m.Target != nil && len(m.Target.Shape) == 4 && len(dense) == 4 {
		kh, kw := m.Target.Shape[2], m.Target.Shape[3]
		if int64(dense[2]) != kh || int64(dense[3]) != kw {
			err := &adapter.ShapeError{Rule: adapter.RuleKernel, Detail: fmt.Sprintf("%s delta kernel %dx%d, the %s weight's is %dx%d", algo, dense[2], dense[3], m.Target.Module, kh, kw)}
			return fmt.Errorf("module %s: %v", m.Prefix, err)
		}
	}
	return nil
}
