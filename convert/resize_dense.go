package convert

import (
	"fmt"
	"math"
	"sort"

	"github.com/loratool/loratool/adapter"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/svd"
)

// resize --approximate: LoKr, LoHa and full-diff modules have no LoRA
// factors to truncate, so their dense delta (alpha scale folded in) is
// decomposed by SVD (exact up to svd.ExactMax, randomized beyond) and
// written as a plain LoRA of the chosen rank (up = U·S, down = Vt, alpha =
// rank). Bias deltas (diff_b) are kept unchanged.

// denseResizable reports whether --approximate can resize m.
func denseResizable(m *lora.Module) bool {
	ok := false
	for _, a := range m.Algorithms() {
		switch a {
		case "lokr", "loha", "full":
			ok = true
		case "lora":
		default: // dora (needs the base weight), glora, oft, ia3, norm
			return false
		}
	}
	// a module with only a bias delta has no matrix to resize
	return ok && !(m.Has(lora.RoleDiffB) && len(m.Tensors) == 1)
}

// resizeAny resizes a plain LoRA module exactly from its factors, or
// (with --approximate) a LyCORIS/full-diff module via its dense delta.
func resizeAny(src source, refs map[string]srcTensor, m *lora.Module, opt ResizeOptions) (moduleOutcome, []outTensor, error) {
	for _, a := range m.Algorithms() {
		if a == "lokr" || a == "loha" || a == "full" {
			return resizeDenseModule(src, refs, m, opt)
		}
	}
	return resizeModule(src, refs, m, opt)
}

func resizeDenseModule(src source, refs map[string]srcTensor, m *lora.Module, opt ResizeOptions) (moduleOutcome, []outTensor, error) {
	var oc moduleOutcome
	oc.Module = m.Prefix
	oc.OldRank = int(m.Rank())
	am := &adapter.Module{Tensors: map[string]*adapter.Tensor{}}
	for _, a := range m.Algorithms() {
		switch a {
		case "lokr":
			am.Algo = adapter.LoKr
		case "loha":
			am.Algo = adapter.LoHa
		case "full":
			if am.Algo == "" {
				am.Algo = adapter.Diff
			}
		}
	}
	var keep []string // roles carried unchanged (diff_b)
	roles := make([]string, 0, len(m.Tensors))
	for role := range m.Tensors {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	dt := dtype.Invalid
	for _, role := range roles {
		ref := m.Tensors[role]
		if role == lora.RoleDiffB {
			keep = append(keep, role)
			continue
		}
		t := refs[ref.Key]
		b, err := src.Read(t)
		if err != nil {
			return oc, nil, err
		}
		v := &val{dt: t.DType, shape: t.Shape, raw: b}
		f, err := v.floats()
		if err != nil {
			return oc, nil, err
		}
		if role != lora.RoleAlpha && dt == dtype.Invalid && t.DType.IsFloat() {
			dt = t.DType // the output keeps the factors' dtype
		}
		sh := make([]int, len(t.Shape))
		for i, d := range t.Shape {
			sh[i] = int(d)
		}
		am.Tensors[role] = &adapter.Tensor{Shape: sh, Data: f}
	}
	rows, cols, ok := m.DeltaShape()
	if !ok && m.Target != nil && m.Target.Slice == nil && len(m.Target.Shape) >= 2 {
		rows, cols, ok = m.Target.Shape[0], 1, true
		for _, d := range m.Target.Shape[1:] {
			cols *= d
		}
	}
	if !ok || rows <= 0 || cols <= 0 {
		return oc, nil, fmt.Errorf("the shape of its delta is unknown")
	}
	shape := []int{int(rows), int(cols)}
	var kernel []int64
	if d, ok := am.Tensors[lora.RoleDiff]; ok && len(d.Shape) == 4 {
		kernel = []int64{int64(d.Shape[2]), int64(d.Shape[3])}
	} else if m.Target != nil && len(m.Target.Shape) == 4 {
		kh, kw := m.Target.Shape[2], m.Target.Shape[3]
		if kh*kw > 1 && cols%(kh*kw) == 0 {
			kernel = []int64{kh, kw}
		}
	}
	if kernel != nil {
		shape = []int{int(rows), int(cols / (kernel[0] * kernel[1])), int(kernel[0]), int(kernel[1])}
	}
	if d, ok := am.Tensors[lora.RoleDiff]; ok && len(d.Shape) == len(shape) {
		shape = d.Shape
	}
	rule := opt.Rule
	var up, down svd.Dense
	var k int
	if am.Algo == adapter.LoKr {
		// exact and cheap: the SVD of a Kronecker product from its factors
		w1, w2, err := adapter.LoKrFactors(am)
		if err != nil {
			return oc, nil, err
		}
		sc, err := adapter.Scale(am)
		if err != nil {
			return oc, nil, err
		}
		if int64(w1.Shape[0]*w2.Shape[0]) != rows || int64(w1.Shape[1]*w2.Shape[1]) != cols {
			return oc, nil, fmt.Errorf("LoKr factors %v and %v do not make a %d×%d delta", w1.Shape, w2.Shape, rows, cols)
		}
		var spec []float64
		up, down, k, spec, oc.total, err = svd.KronTruncate(svd.Dense{Rows: w1.Shape[0], Cols: w1.Shape[1], Data: w1.Data},
			svd.Dense{Rows: w2.Shape[0], Cols: w2.Shape[1], Data: w2.Data}, float64(sc), opt.MaxRank, &rule)
		if err != nil {
			return oc, nil, err
		}
		for _, s := range spec[:k] {
			oc.head += s * s
		}
		oc.Retained = 1
		if oc.total > 0 {
			oc.Retained = math.Min(1, math.Sqrt(oc.head/oc.total))
		}
	} else if fu, fd, ok, err := adapter.LoHaFactors(am); err != nil {
		return oc, nil, err
	} else if ok && int64(fu.Shape[0]) == rows && int64(fd.Shape[1]) == cols {
		// exactly a LoRA of rank r1·r2: exact SVD from the factors (QRs and
		// a small SVD), no dense delta
		sc, err := adapter.Scale(am)
		if err != nil {
			return oc, nil, err
		}
		f := svd.Factored{Up: svd.Dense{Rows: fu.Shape[0], Cols: fu.Shape[1], Data: fu.Data}, Down: svd.Dense{Rows: fd.Shape[0], Cols: fd.Shape[1], Data: fd.Data}}
		spec, err := svd.Spectrum(f)
		if err != nil {
			return oc, nil, err
		}
		for i := range spec {
			spec[i] *= math.Abs(float64(sc))
			oc.total += spec[i] * spec[i]
		}
		k = max(min(rule.Rank(spec, opt.MaxRank), len(spec)), 1)
		for _, v := range spec[:k] {
			oc.head += v * v
		}
		oc.Retained = svd.Retained(spec, k)
		dec, err := svd.FromFactors(f, k)
		if err != nil {
			return oc, nil, err
		}
		k = dec.Rank()
		up = svd.Dense{Rows: int(rows), Cols: k, Data: make([]float32, int(rows)*k)}
		for i := 0; i < int(rows); i++ {
			for j := 0; j < k; j++ {
				up.Data[i*k+j] = float32(float64(dec.U.Data[i*dec.U.Cols+j]) * float64(dec.S[j]) * float64(sc))
			}
		}
		down = svd.Dense{Rows: k, Cols: int(cols), Data: dec.Vt.Data[:k*int(cols)]}
	} else {
		dl, err := adapter.Delta(am, shape)
		if err != nil {
			return oc, nil, err
		}
		res, kk, err := svd.TruncateDense(svd.Dense{Rows: int(rows), Cols: int(cols), Data: dl.Data}, opt.MaxRank, &rule)
		if err != nil {
			return oc, nil, err
		}
		k = kk
		for i, s := range res.Spectrum() {
			if i < k {
				oc.head += s * s
			}
		}
		oc.total = res.TotalFro2
		oc.Retained = res.RetainedTotal(k)
		up, down = res.Factors(k, svd.SplitUp)
	}
	oc.Rank = k
	oc.RelError = math.Sqrt(math.Max(0, 1-oc.Retained*oc.Retained))
	us := []int64{rows, int64(k)}
	ds := []int64{int64(k), cols}
	if kernel != nil {
		us = append(us, 1, 1)
		ds = []int64{int64(k), cols / (kernel[0] * kernel[1]), kernel[0], kernel[1]}
	}
	if dt == dtype.Invalid {
		dt = dtype.F32
	}
	outs := []outTensor{
		{m.Prefix + ".lora_up.weight", computed(dt, us, up.Data)},
		{m.Prefix + ".lora_down.weight", computed(dt, ds, down.Data)},
		{m.Prefix + ".alpha", computed(alphaDType(dt), []int64{}, []float32{float32(k)})},
	}
	sort.Strings(keep)
	for _, role := range keep {
		t := refs[m.Tensors[role].Key]
		b, err := src.Read(t)
		if err != nil {
			return oc, nil, err
		}
		outs = append(outs, outTensor{t.Name, &val{dt: t.DType, shape: t.Shape, raw: b}})
	}
	return oc, outs, nil
}
