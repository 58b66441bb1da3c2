// Package adapter implements the weight-adapter math of the LoRA family
// (LoRA/LoCon/Tucker, LoHa, LoKr, GLoRA, OFT, BOFT, (IA)³, DoRA, full
// diffs, norm diffs and "set") the way ComfyUI's calculate_weight applies
// one patch to one weight, in float32.
//
// Matrix products run in float32 through gonum's blas32 Sgemm; reductions
// that torch performs as a single call (vector norms, the Cayley inverse of
// OFT/BOFT) are accumulated in float64 and rounded once. Every elementwise
// step rounds to float32 exactly where torch would (explicit conversions
// prevent fused multiply-add), so results agree with ComfyUI's float32
// computation up to matmul summation order.
//
// See docs/algorithms.md for the formulas and the ComfyUI quirks followed.
package adapter

import (
	"errors"
	"fmt"
)

// Algo names an adapter algorithm (inspect vocabulary where it overlaps).
type Algo string

// Algorithm names.
const (
	// LoRA is LoRA/LoCon, optionally with a Tucker "mid" tensor.
	LoRA Algo = "lora"
	// LoHa is the Hadamard-product adapter (optionally Tucker/CP).
	LoHa Algo = "loha"
	// LoKr is the Kronecker-product adapter.
	LoKr Algo = "lokr"
	// GLoRA is generalised LoRA; its delta depends on the weight.
	GLoRA Algo = "glora"
	// OFT is diagonal orthogonal fine-tuning (3-D oft_blocks).
	OFT Algo = "oft"
	// BOFT is butterfly OFT (4-D oft_blocks).
	BOFT Algo = "boft"
	// IA3 is (IA)³ per-channel rescaling.
	IA3 Algo = "ia3"
	// Diff is a full additive weight delta ("diff").
	Diff Algo = "full"
	// Norm is a full additive delta for a norm layer ("w_norm"/"b_norm").
	Norm Algo = "norm"
	// Set replaces the weight outright ("set_weight").
	Set Algo = "set"
)

// Role names of adapter tensors in Module.Tensors.
const (
	// RoleUp is the LoRA up / lora_B [out, r(,1,1)].
	RoleUp = "up"
	// RoleDown is the LoRA down / lora_A [r, in(,kh,kw)].
	RoleDown = "down"
	// RoleMid is the LoRA Tucker lora_mid [r, r, kh, kw].
	RoleMid = "mid"
	// RoleAlpha is the alpha as a 0-d tensor (used when Module.Alpha is nil).
	RoleAlpha = "alpha"
	// RoleDoRAScale is the DoRA magnitude vector.
	RoleDoRAScale = "dora_scale"
	// RoleReshapeWeight is the shape to zero-pad the weight to (LoRA only).
	RoleReshapeWeight = "reshape_weight"
	// RoleHadaW1A is the LoHa w1 a factor.
	RoleHadaW1A = "hada_w1_a"
	// RoleHadaW1B is the LoHa w1 b factor (its rows are the rank).
	RoleHadaW1B = "hada_w1_b"
	// RoleHadaW2A is the LoHa w2 a factor.
	RoleHadaW2A = "hada_w2_a"
	// RoleHadaW2B is the LoHa w2 b factor.
	RoleHadaW2B = "hada_w2_b"
	// RoleHadaT1 is the LoHa Tucker core of w1.
	RoleHadaT1 = "hada_t1"
	// RoleHadaT2 is the LoHa Tucker core of w2.
	RoleHadaT2 = "hada_t2"
	// RoleLoKrW1 is the LoKr full w1.
	RoleLoKrW1 = "lokr_w1"
	// RoleLoKrW1A is the LoKr w1 a factor.
	RoleLoKrW1A = "lokr_w1_a"
	// RoleLoKrW1B is the LoKr w1 b factor.
	RoleLoKrW1B = "lokr_w1_b"
	// RoleLoKrW2 is the LoKr full w2.
	RoleLoKrW2 = "lokr_w2"
	// RoleLoKrW2A is the LoKr w2 a factor.
	RoleLoKrW2A = "lokr_w2_a"
	// RoleLoKrW2B is the LoKr w2 b factor.
	RoleLoKrW2B = "lokr_w2_b"
	// RoleLoKrT2 is the LoKr Tucker core of w2.
	RoleLoKrT2 = "lokr_t2"
	// RoleA1 is the GLoRA a1.
	RoleA1 = "a1"
	// RoleA2 is the GLoRA a2.
	RoleA2 = "a2"
	// RoleB1 is the GLoRA b1.
	RoleB1 = "b1"
	// RoleB2 is the GLoRA b2.
	RoleB2 = "b2"
	// RoleOFTBlocks is the OFT [n,b,b] / BOFT [m,n,b,b] blocks.
	RoleOFTBlocks = "oft_blocks"
	// RoleRescale is the OFT/BOFT rescale (used by BOFT only, as in ComfyUI).
	RoleRescale = "rescale"
	// RoleDiff is the full delta (diff or w_norm).
	RoleDiff = "diff"
	// RoleSetWeight is the replacement weight.
	RoleSetWeight = "set_weight"
	// RoleIA3Weight is the (IA)³ per-channel vector.
	RoleIA3Weight = "ia3_weight"
	// RoleOnInput is the (IA)³ flag: non-zero scales the input dim.
	RoleOnInput = "on_input"
)

// Module is one adapter patch for one target weight.
type Module struct {
	// Algo selects the algorithm.
	Algo Algo
	// Tensors holds the adapter tensors by role (see the Role constants).
	Tensors map[string]*Tensor
	// Alpha is the module's alpha (nil = absent). For OFT/BOFT it is the
	// COFT norm constraint, not a scale. If Alpha is nil and Tensors has an
	// "alpha" tensor, its first value is used.
	Alpha *float32
}

// Options controls how Apply applies a module.
type Options struct {
	// Strength is s (strength_model / strength_clip).
	Strength float32
	// DoRAComfyQuirk (default true) reproduces ComfyUI: when dora_scale
	// runs along the output axis, the row norms are taken from the ORIGINAL
	// weight W instead of W+ΔW. False uses ‖W+ΔW‖ (PEFT/LyCORIS).
	DoRAComfyQuirk bool
	// OFTStrengthSquared (default true) reproduces ComfyUI's OFT/BOFT,
	// where strength enters twice. False applies it once (LyCORIS:
	// W' = W + s·(R−I)ᵀW for OFT, W' = W + (B_s(W)−W) for BOFT with the
	// blended rotations), and under DoRA uses scale 1 instead of ComfyUI's
	// use of the OFT constraint alpha as DoRA scale.
	OFTStrengthSquared bool
}

// DefaultOptions returns ComfyUI-compatible options for strength s.
func DefaultOptions(strength float32) Options {
	return Options{Strength: strength, DoRAComfyQuirk: true, OFTStrengthSquared: true}
}

// ErrNeedsWeight is returned by Delta for modules whose effect depends on the
// target weight (GLoRA, OFT, BOFT, IA3, set, or any module with dora_scale).
var ErrNeedsWeight = errors.New("adapter: delta depends on the target weight")

// alphaOf returns the module's alpha as float64 and whether it is present.
func alphaOf(m *Module) (float64, bool) {
	if m.Alpha != nil {
		return float64(*m.Alpha), true
	}
	if t, ok := m.Tensors[RoleAlpha]; ok && t != nil && len(t.Data) >= 1 {
		return float64(t.Data[0]), true
	}
	return 0, false
}

// tensor returns the role's tensor, validated, or an error if missing.
func (m *Module) tensor(role string) (*Tensor, error) {
	t, ok := m.Tensors[role]
	if !ok || t == nil {
		return nil, fmt.Errorf("adapter: %s: missing tensor %q", m.Algo, role)
	}
	if err := checkTensor(t, string(m.Algo)+" "+role); err != nil {
		return nil, err
	}
	return t, nil
}

// optTensor returns the role's tensor (validated) or nil if absent.
func (m *Module) optTensor(role string) (*Tensor, error) {
	t, ok := m.Tensors[role]
	if !ok || t == nil {
		return nil, nil
	}
	if err := checkTensor(t, string(m.Algo)+" "+role); err != nil {
		return nil, err
	}
	return t, nil
}

// has reports whether role is present.
func (m *Module) has(role string) bool {
	t, ok := m.Tensors[role]
	return ok && t != nil
}

// Scale returns the multiplier the algorithm applies to its raw product:
// LoRA alpha/down.shape[0]; LoHa alpha/hada_w1_b.shape[0]; LoKr alpha/dim
// with dim = lokr_w1_b.shape[0] if w1 is decomposed, overwritten by
// lokr_w2_b.shape[0] if w2 is decomposed, and 1 when both factors are full;
// GLoRA alpha/rank (rank from the old/new format test, see Rank). A missing
// alpha gives 1. OFT, BOFT (alpha is a constraint there), IA3, diff, norm
// and set give 1.
func Scale(m *Module) (float32, error) {
	s, err := scale64(m, nil)
	return float32(s), err
}

// scale64 is Scale in float64 (ComfyUI computes alpha/rank as a Python
// float). wShape, when known, resolves GLoRA's format ambiguity.
func scale64(m *Module, wShape []int) (float64, error) {
	if m == nil {
		return 0, errors.New("adapter: nil module")
	}
	alpha, hasAlpha := alphaOf(m)
	div := func(d int, what string) (float64, error) {
		if !hasAlpha {
			return 1, nil
		}
		if d == 0 {
			return 0, fmt.Errorf("adapter: %s: alpha divided by zero %s", m.Algo, what)
		}
		return alpha / float64(d), nil
	}
	switch m.Algo {
	case LoRA:
		down, err := m.tensor(RoleDown)
		if err != nil {
			return 0, err
		}
		if len(down.Shape) == 0 {
			return 0, fmt.Errorf("adapter: lora: down is a scalar")
		}
		return div(down.Shape[0], "rank")
	case LoHa:
		w1b, err := m.tensor(RoleHadaW1B)
		if err != nil {
			return 0, err
		}
		if len(w1b.Shape) == 0 {
			return 0, fmt.Errorf("adapter: loha: hada_w1_b is a scalar")
		}
		return div(w1b.Shape[0], "rank")
	case LoKr:
		dim, ok, err := lokrDim(m)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 1, nil
		}
		return div(dim, "rank")
	case GLoRA:
		g, err := gloraFormat(m, wShape)
		if err != nil {
			return 0, err
		}
		if !hasAlpha {
			return 1, nil
		}
		if !g.rankKnown {
			return 0, fmt.Errorf("adapter: glora: shapes a1 %v a2 %v b1 %v b2 %v match neither format, rank unknown", g.a1.Shape, g.a2.Shape, g.b1.Shape, g.b2.Shape)
		}
		return div(g.rank, "rank")
	case OFT, BOFT, IA3, Diff, Norm, Set:
		return 1, nil
	}
	return 0, fmt.Errorf("adapter: unknown algorithm %q", m.Algo)
}

// Rank returns the module's rank as inspect reports it: LoRA down.shape[0];
// LoHa hada_w1_b.shape[0]; LoKr the inner dim of the decomposed factor
// (lokr_w2_b.shape[0] if w2 is decomposed, else lokr_w1_b.shape[0]; 0 if
// both are full); GLoRA the rank of the detected format (without a target
// weight the ambiguous square case is resolved as ComfyUI would for a weight
// of shape [b2.shape[0], b1.shape[1]]); 0 for every other algorithm or when
// the tensors needed are missing or malformed.
func Rank(m *Module) int {
	if m == nil {
		return 0
	}
	first := func(role string) int {
		t, err := m.tensor(role)
		if err != nil || len(t.Shape) == 0 {
			return 0
		}
		return t.Shape[0]
	}
	switch m.Algo {
	case LoRA:
		return first(RoleDown)
	case LoHa:
		return first(RoleHadaW1B)
	case LoKr:
		d, ok, err := lokrDim(m)
		if err != nil || !ok {
			return 0
		}
		return d
	case GLoRA:
		g, err := gloraFormat(m, nil)
		if err != nil || !g.rankKnown {
			return 0
		}
		return g.rank
	}
	return 0
}

// Delta returns the additive delta ΔW·Scale (not multiplied by strength),
// reshaped to targetShape, for the algorithms whose delta does not depend on
// the weight: LoRA/LoCon/Tucker, LoHa (+Tucker), LoKr (every factor form),
// diff and norm. A module carrying dora_scale, and GLoRA, OFT, BOFT, IA3 and
// set, give ErrNeedsWeight (wrapped). reshape_weight is ignored: pass the
// padded shape as targetShape.
func Delta(m *Module, targetShape []int) (*Tensor, error) {
	if m == nil {
		return nil, errors.New("adapter: nil module")
	}
	n, ok := shapeNumel(targetShape)
	if !ok {
		return nil, fmt.Errorf("adapter: invalid target shape %v", targetShape)
	}
	switch m.Algo {
	case LoRA, LoHa, LoKr, Diff, Norm:
		if _, err := ValidateShapes(m.Algo, moduleShapes(m), targetShape, 0); err != nil {
			return nil, err
		}
	}
	switch m.Algo {
	case LoRA, LoHa, LoKr:
		if m.has(RoleDoRAScale) {
			return nil, fmt.Errorf("%w: %s module has dora_scale", ErrNeedsWeight, m.Algo)
		}
		d, err := rawDelta(m, targetShape, n)
		if err != nil {
			return nil, err
		}
		sc, err := scale64(m, targetShape)
		if err != nil {
			return nil, err
		}
		f := float32(sc)
		for i := range d {
			d[i] *= f
		}
		return &Tensor{Shape: append([]int(nil), targetShape...), Data: d}, nil
	case Diff, Norm:
		diff, err := m.tensor(RoleDiff)
		if err != nil {
			return nil, err
		}
		if !sameShape(diff.Shape, targetShape) {
			return nil, fmt.Errorf("adapter: %s: shape mismatch: diff %v != weight %v", m.Algo, diff.Shape, targetShape)
		}
		return diff.clone(), nil
	case GLoRA, OFT, BOFT, IA3, Set:
		return nil, fmt.Errorf("%w: %s", ErrNeedsWeight, m.Algo)
	}
	return nil, fmt.Errorf("adapter: unknown algorithm %q", m.Algo)
}

// rawDelta returns the unscaled ΔW of a LoRA/LoHa/LoKr module with numel n
// (the element order of torch's reshape to the target shape).
func rawDelta(m *Module, shape []int, n int) ([]float32, error) {
	var d []float32
	var err error
	switch m.Algo {
	case LoRA:
		var up, down []float32
		var rows, r, cols int
		up, down, rows, r, cols, err = loraFactors(m)
		if err == nil {
			if rows*cols != n {
				return nil, fmt.Errorf("adapter: lora: shape mismatch: delta [%d %d] cannot be reshaped to %v", rows, cols, shape)
			}
			d = matmul(up, rows, r, down, cols)
		}
	case LoHa:
		d, err = lohaDelta(m)
	case LoKr:
		d, err = lokrDelta(m)
	default:
		err = fmt.Errorf("adapter: %s has no weight-independent delta", m.Algo)
	}
	if err != nil {
		return nil, err
	}
	if len(d) != n {
		return nil, fmt.Errorf("adapter: %s: shape mismatch: delta has %d elements, weight %v has %d", m.Algo, len(d), shape, n)
	}
	return d, nil
}

// Apply modifies w like ComfyUI's calculate_weight does for one patch and
// returns the result: w itself, or a new zero-padded tensor when a LoRA
// module carries reshape_weight. On error w is left unchanged and returned
// with the error.
//
// Additive algorithms (LoRA, LoHa, LoKr, GLoRA) do W += s·scale·ΔW, or the
// DoRA decomposition when dora_scale is present. OFT/BOFT rotate output
// rows (see Options.OFTStrengthSquared), IA3 does W ⊙= 1 + s·w along the
// output dim (input dim when on_input is non-zero), diff/norm do W += s·diff
// (shapes must match; s = 0 is a no-op), and set copies set_weight into W
// ignoring the strength. See docs/algorithms.md for every formula.
func Apply(w *Tensor, m *Module, opt Options) (*Tensor, error) {
	if err := checkTensor(w, "weight"); err != nil {
		return w, err
	}
	if m == nil {
		return w, errors.New("adapter: nil module")
	}
	target := w.Shape
	if rs := m.Tensors[RoleReshapeWeight]; m.Algo == LoRA && rs != nil {
		if checkTensor(rs, "reshape_weight") == nil {
			if t, err := padShape(w.Shape, rs); err == nil {
				target = t
			}
		}
	}
	if _, err := ValidateShapes(m.Algo, moduleShapes(m), target, 0); err != nil {
		return w, err
	}
	var err error
	switch m.Algo {
	case LoRA:
		return applyLoRA(w, m, opt)
	case LoHa, LoKr:
		err = applyAdditive(w, m, opt)
	case GLoRA:
		err = applyGLoRA(w, m, opt)
	case OFT:
		err = applyOFT(w, m, opt)
	case BOFT:
		err = applyBOFT(w, m, opt)
	case IA3:
		err = applyIA3(w, m, opt)
	case Diff, Norm:
		err = applyDiff(w, m, opt)
	case Set:
		err = applySet(w, m)
	default:
		err = fmt.Errorf("adapter: unknown algorithm %q", m.Algo)
	}
	return w, err
}

// addScaled does w += float32(f·d) elementwise with torch's two roundings.
func addScaled(w, d []float32, f float32) {
	for i := range w {
		w[i] += float32(f * d[i])
	}
}

// applyAdditive applies a W-independent delta (LoHa, LoKr) with or
// without DoRA.
func applyAdditive(w *Tensor, m *Module, opt Options) error {
	n := len(w.Data)
	d, err := rawDelta(m, w.Shape, n)
	if err != nil {
		return err
	}
	sc, err := scale64(m, w.Shape)
	if err != nil {
		return err
	}
	return finishAdditive(w, m, d, sc, opt)
}

// finishAdditive does W += float32(s·scale)·ΔW, or DoRA when dora_scale
// is present.
func finishAdditive(w *Tensor, m *Module, d []float32, sc float64, opt Options) error {
	ds, err := m.optTensor(RoleDoRAScale)
	if err != nil {
		return err
	}
	if ds != nil {
		return applyDoRA(w, d, sc, opt, ds)
	}
	addScaled(w.Data, d, float32(float64(opt.Strength)*sc))
	return nil
}
