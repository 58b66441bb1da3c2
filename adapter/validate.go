package adapter

import (
	"fmt"
	"math"
)

// Shape rules checked by ValidateShapes. A ShapeError names one of them.
const (
	// RuleTensor: a tensor of the module has a usable shape (dims ≥ 1, the
	// dimension count the algorithm needs, an element count that fits).
	RuleTensor = "tensor shape"
	// RuleRank: the rank (inner dimension) is at least 1.
	RuleRank = "rank ≥ 1"
	// RuleInner: the inner dimensions of a product agree.
	RuleInner = "inner dimensions agree"
	// RuleKernel: a conv kernel matches the kernel of its weight.
	RuleKernel = "conv kernel matches the weight"
	// RuleFactors: Tucker, LoHa and LoKr factors multiply to the target shape
	// (and the delta of any algorithm fits the weight).
	RuleFactors = "factors multiply to the target shape"
	// RuleDoRA: the DoRA magnitude vector has the length of an axis of the weight.
	RuleDoRA = "DoRA magnitude length"
	// RuleDense: the dense delta the module implies is within the size limit.
	RuleDense = "dense size limit"
)

// DefaultMaxDense is the default bound, in elements, on the dense delta of a
// module when no target weight bounds it (LoRA+LoRA merges, convert
// --approximate, resize): 2^28 float32 values (1 GiB), larger than any
// single weight of the models loratool knows.
const DefaultMaxDense int64 = 1 << 28

// ShapeError is a module whose tensor shapes break one of its algorithm's
// shape rules.
type ShapeError struct {
	// Rule is one of the Rule constants.
	Rule string
	// Detail says which shapes disagree.
	Detail string
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("shape mismatch (rule: %s): %s", e.Rule, e.Detail)
}

func shapeErr(rule, format string, args ...any) error {
	return &ShapeError{Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// ValidateShapes checks the shapes of one module (role → shape, the Role
// constants) against its algorithm's rules before any arithmetic or
// allocation, and returns the shape of the dense delta it implies (nil for
// algorithms whose effect is not an additive delta of its own shape: GLoRA,
// OFT, BOFT, IA3).
//
// target is the weight the module patches (for a LoRA with reshape_weight,
// the padded shape), or nil when unknown. With a target, the delta must fit
// it: rows and flattened columns agree, conv kernels agree, the DoRA
// magnitude has the length of an axis. maxDense bounds the dense delta in
// elements when target is nil (≤ 0: DefaultMaxDense); with a target the
// bound is the target's own size. Every tensor of the module is bounded by
// maxDense too, so a factor cannot be larger than a dense delta would be.
func ValidateShapes(algo Algo, shapes map[string][]int, target []int, maxDense int64) ([]int, error) {
	if maxDense <= 0 {
		maxDense = DefaultMaxDense
	}
	if tn, ok := numel64(target); ok && target != nil {
		// a factor is never (much) larger than the weight it patches
		maxDense = min(maxDense, max(tn, 1<<20))
	}
	for role, s := range shapes {
		if role == RoleAlpha || role == RoleOnInput || role == RoleReshapeWeight {
			continue
		}
		n, ok := shapeNumel(s)
		if !ok {
			return nil, shapeErr(RuleTensor, "%s %v has no valid element count", role, s)
		}
		if int64(n) > maxDense {
			return nil, shapeErr(RuleDense, "%s %v has more than %d elements", role, s, maxDense)
		}
	}
	if target != nil {
		tn, ok := shapeNumel(target)
		if !ok || len(target) == 0 {
			return nil, shapeErr(RuleTensor, "target weight %v", target)
		}
		maxDense = int64(tn)
	}
	get := func(role string) ([]int, error) {
		s, ok := shapes[role]
		if !ok || s == nil {
			return nil, shapeErr(RuleTensor, "%s: missing tensor %q", algo, role)
		}
		return s, nil
	}
	var dense []int
	var err error
	switch algo {
	case LoRA:
		dense, err = loraShape(shapes, get)
	case LoHa:
		dense, err = lohaShape(shapes, get)
	case LoKr:
		dense, err = lokrShape(shapes, get)
	case Diff, Norm:
		dense, err = get(RoleDiff)
	case Set:
		dense, err = get(RoleSetWeight)
	case GLoRA, OFT, BOFT, IA3:
		return nil, otherShapes(algo, shapes, target, get)
	default:
		return nil, fmt.Errorf("adapter: unknown algorithm %q", algo)
	}
	if err != nil {
		return nil, err
	}
	for role, s := range shapes {
		if role == RoleAlpha || role == RoleOnInput || role == RoleReshapeWeight {
			continue
		}
		for _, d := range s {
			if d == 0 {
				return nil, shapeErr(RuleTensor, "%s %v has an empty dimension", role, s)
			}
		}
	}
	if target != nil && len(dense) == 4 && len(target) == 4 && (dense[2] != target[2] || dense[3] != target[3]) {
		return nil, shapeErr(RuleKernel, "%s delta kernel %dx%d, weight %v", algo, dense[2], dense[3], target)
	}
	n, ok := numel64(dense)
	if !ok || n > maxDense {
		if target != nil {
			return nil, shapeErr(RuleFactors, "%s delta %v does not fit weight %v", algo, dense, target)
		}
		return nil, shapeErr(RuleDense, "%s delta %v has more than %d elements", algo, dense, maxDense)
	}
	if target != nil {
		if err := fits(algo, dense, target); err != nil {
			return nil, err
		}
		if ds, ok := shapes[RoleDoRAScale]; ok {
			if err := doraFits(ds, target); err != nil {
				return nil, err
			}
		}
	}
	return dense, nil
}

// numel64 is the element count of s, false on overflow or a negative dim.
func numel64(s []int) (int64, bool) {
	n := int64(1)
	for _, d := range s {
		if d < 0 || (d > 0 && n > math.MaxInt64/int64(d)) {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

// fits checks that a dense delta can be added to target: same element
// count, same rows (full/norm/set only need the element count, as in
// ComfyUI), and the same kernel when both are conv shapes.
func fits(algo Algo, dense, target []int) error {
	dn, _ := numel64(dense)
	tn, _ := numel64(target)
	if dn != tn {
		return shapeErr(RuleFactors, "%s delta %v does not fit weight %v", algo, dense, target)
	}
	switch algo {
	case Diff, Norm, Set:
		return nil
	}
	if dense[0] != target[0] {
		return shapeErr(RuleFactors, "%s delta %v has %d rows, weight %v has %d", algo, dense, dense[0], target, target[0])
	}
	if len(dense) == 4 && len(target) == 4 && (dense[2] != target[2] || dense[3] != target[3]) {
		return shapeErr(RuleKernel, "%s delta kernel %dx%d, weight %v", algo, dense[2], dense[3], target)
	}
	return nil
}

// doraFits checks the DoRA magnitude: its length is the weight's output
// rows or input columns, and it broadcasts onto the weight.
func doraFits(ds, target []int) error {
	n, _ := numel64(ds)
	if len(ds) == 0 || (n != int64(target[0]) && (len(target) < 2 || n != int64(target[1]))) {
		return shapeErr(RuleDoRA, "dora_scale %v for weight %v (need %d or %d values)", ds, target, target[0], target[min(1, len(target)-1)])
	}
	if err := checkDoRA(target, &Tensor{Shape: ds}); err != nil {
		return shapeErr(RuleDoRA, "dora_scale %v cannot scale weight %v", ds, target)
	}
	return nil
}

// loraShape: up [out, r(,1,1)], down [r, in(,kh,kw)], optional Tucker mid
// [r, r, kh, kw] with down [r, in(,1,1)].
func loraShape(shapes map[string][]int, get func(string) ([]int, error)) ([]int, error) {
	up, err := get(RoleUp)
	if err != nil {
		return nil, err
	}
	down, err := get(RoleDown)
	if err != nil {
		return nil, err
	}
	if (len(up) != 2 && len(up) != 4) || (len(up) == 4 && (up[2] != 1 || up[3] != 1)) {
		return nil, shapeErr(RuleTensor, "lora up %v: need [out, rank] or [out, rank, 1, 1]", up)
	}
	if len(down) != 2 && len(down) != 4 {
		return nil, shapeErr(RuleTensor, "lora down %v: need [rank, in] or [rank, in, kh, kw]", down)
	}
	r := down[0]
	if r < 1 || up[1] < 1 {
		return nil, shapeErr(RuleRank, "lora down %v, up %v", down, up)
	}
	if up[1] != r {
		return nil, shapeErr(RuleInner, "lora up %v @ down %v (%d != %d)", up, down, up[1], r)
	}
	mid, hasMid := shapes[RoleMid]
	if !hasMid {
		return append([]int{up[0]}, down[1:]...), nil
	}
	if len(mid) != 4 {
		return nil, shapeErr(RuleTensor, "lora mid %v: need [rank, rank, kh, kw]", mid)
	}
	if mid[0] != r || mid[1] != r {
		return nil, shapeErr(RuleInner, "lora mid %v with down %v and up %v", mid, down, up)
	}
	if len(down) == 4 && (down[2] != 1 || down[3] != 1) {
		return nil, shapeErr(RuleKernel, "lora down %v with a Tucker mid %v needs a 1x1 kernel", down, mid)
	}
	return []int{up[0], down[1], mid[2], mid[3]}, nil
}

// lohaShape: (w1a [out,r1] @ w1b [r1,in]) ⊙ (w2a @ w2b), or the Tucker form
// t [r,r,kh,kw], b [r,in], a [r,out] → [out,in,kh,kw] for both halves.
func lohaShape(shapes map[string][]int, get func(string) ([]int, error)) ([]int, error) {
	var s [4][]int
	for i, role := range []string{RoleHadaW1A, RoleHadaW1B, RoleHadaW2A, RoleHadaW2B} {
		x, err := get(role)
		if err != nil {
			return nil, err
		}
		if len(x) != 2 {
			return nil, shapeErr(RuleTensor, "loha %s %v: need a 2-D matrix", role, x)
		}
		s[i] = x
	}
	half := func(a, b []int, core string) ([]int, error) {
		if b[0] < 1 {
			return nil, shapeErr(RuleRank, "loha %v @ %v", a, b)
		}
		t, ok := shapes[core]
		if !ok {
			if a[1] != b[0] {
				return nil, shapeErr(RuleInner, "loha %v @ %v (%d != %d)", a, b, a[1], b[0])
			}
			return []int{a[0], b[1]}, nil
		}
		if len(t) != 4 {
			return nil, shapeErr(RuleTensor, "loha %s %v: need a 4-D Tucker core", core, t)
		}
		if t[1] != b[0] || t[0] != a[0] {
			return nil, shapeErr(RuleInner, "loha Tucker core %s %v with b %v and a %v", core, t, b, a)
		}
		return []int{a[1], b[1], t[2], t[3]}, nil
	}
	_, t1 := shapes[RoleHadaT1]
	_, t2 := shapes[RoleHadaT2]
	if t1 != t2 {
		return nil, shapeErr(RuleTensor, "loha: hada_t1 and hada_t2 come together")
	}
	m1, err := half(s[0], s[1], RoleHadaT1)
	if err != nil {
		return nil, err
	}
	m2, err := half(s[2], s[3], RoleHadaT2)
	if err != nil {
		return nil, err
	}
	if !sameShape(m1, m2) {
		return nil, shapeErr(RuleFactors, "loha halves %v and %v differ", m1, m2)
	}
	return m1, nil
}

// lokrShape: kron(w1, w2) with w1 = lokr_w1 or w1_a@w1_b and w2 = lokr_w2,
// w2_a@w2_b or the Tucker rebuild with lokr_t2; w1 gains a 1x1 kernel when
// w2 is 4-D.
func lokrShape(shapes map[string][]int, get func(string) ([]int, error)) ([]int, error) {
	factor := func(full, a, b, core string) ([]int, error) {
		if s, ok := shapes[full]; ok {
			if len(s) != 2 && len(s) != 4 {
				return nil, shapeErr(RuleTensor, "lokr %s %v: need 2 or 4 dims", full, s)
			}
			return s, nil
		}
		sa, err := get(a)
		if err != nil {
			return nil, err
		}
		sb, err := get(b)
		if err != nil {
			return nil, err
		}
		if len(sa) != 2 || len(sb) != 2 {
			return nil, shapeErr(RuleTensor, "lokr %s %v, %s %v: need 2-D matrices", a, sa, b, sb)
		}
		if sb[0] < 1 {
			return nil, shapeErr(RuleRank, "lokr %s %v", b, sb)
		}
		if core != "" {
			if t, ok := shapes[core]; ok {
				if len(t) != 4 {
					return nil, shapeErr(RuleTensor, "lokr %s %v: need a 4-D Tucker core", core, t)
				}
				if t[1] != sb[0] || t[0] != sa[0] {
					return nil, shapeErr(RuleInner, "lokr Tucker core %v with %s %v and %s %v", t, b, sb, a, sa)
				}
				return []int{sa[1], sb[1], t[2], t[3]}, nil
			}
		}
		if sa[1] != sb[0] {
			return nil, shapeErr(RuleInner, "lokr %s %v @ %s %v (%d != %d)", a, sa, b, sb, sa[1], sb[0])
		}
		return []int{sa[0], sb[1]}, nil
	}
	w1, err := factor(RoleLoKrW1, RoleLoKrW1A, RoleLoKrW1B, "")
	if err != nil {
		return nil, err
	}
	w2, err := factor(RoleLoKrW2, RoleLoKrW2A, RoleLoKrW2B, RoleLoKrT2)
	if err != nil {
		return nil, err
	}
	if len(w1) != 2 {
		return nil, shapeErr(RuleTensor, "lokr w1 %v: need a 2-D factor", w1)
	}
	if len(w2) == 4 {
		w1 = []int{w1[0], w1[1], 1, 1}
	}
	out := make([]int, len(w2))
	for i := range out {
		a := int64(w1[i])
		b := int64(w2[i])
		if a*b > math.MaxInt32 {
			return nil, shapeErr(RuleDense, "lokr kron(%v, %v) is too large", w1, w2)
		}
		out[i] = int(a * b)
	}
	return out, nil
}

// otherShapes checks the weight-dependent algorithms' tensors against a
// known target (their own formulas check the rest).
func otherShapes(algo Algo, shapes map[string][]int, target []int, get func(string) ([]int, error)) error {
	switch algo {
	case OFT, BOFT:
		b, err := get(RoleOFTBlocks)
		if err != nil {
			return err
		}
		want := 3
		if algo == BOFT {
			want = 4
		}
		if len(b) != want || b[len(b)-1] != b[len(b)-2] {
			return shapeErr(RuleTensor, "%s oft_blocks %v: need %d dims with square blocks", algo, b, want)
		}
		if target != nil && int64(b[len(b)-3])*int64(b[len(b)-1]) != int64(target[0]) {
			return shapeErr(RuleFactors, "%s oft_blocks %v rotate %d rows, weight %v has %d", algo, b, b[len(b)-3]*b[len(b)-1], target, target[0])
		}
	case IA3:
		w, err := get(RoleIA3Weight)
		if err != nil {
			return err
		}
		n, _ := numel64(w)
		if target != nil && n != int64(target[0]) && (len(target) < 2 || n != int64(target[1])) {
			return shapeErr(RuleFactors, "ia3 weight %v for weight %v", w, target)
		}
	case GLoRA:
		for _, role := range []string{RoleA1, RoleA2, RoleB1, RoleB2} {
			s, err := get(role)
			if err != nil {
				return err
			}
			if len(s) < 2 {
				return shapeErr(RuleTensor, "glora %s %v: need at least 2 dims", role, s)
			}
		}
	}
	if ds, ok := shapes[RoleDoRAScale]; ok && target != nil {
		return doraFits(ds, target)
	}
	return nil
}

// moduleShapes collects the shapes of a module's tensors.
func moduleShapes(m *Module) map[string][]int {
	s := make(map[string][]int, len(m.Tensors))
	for role, t := range m.Tensors {
		if t != nil {
			s[role] = t.Shape
		}
	}
	return s
}
