package merge

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/loratool/loratool/adapter"
	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
	"github.com/loratool/loratool/svd"
)

// LyCORIS modules in a LoRA+LoRA merge: LoKr, LoHa, LoCon/Tucker and full
// diffs have no LoRA factors to concatenate, so their dense delta is
// computed (adapter.Delta, alpha scale and strength folded in), summed with
// the other inputs' deltas of the same weight and re-factored by SVD at the
// rank --rank / --rank-rule give. DoRA modules merge their LoRA direction;
// the magnitude depends on the base weight and is dropped (reported).

// denseAlgos are the algorithms whose delta does not depend on the base
// weight and is re-factored by SVD.
var denseAlgos = map[string]adapter.Algo{"lokr": adapter.LoKr, "loha": adapter.LoHa, "full": adapter.Diff}

// classify returns whether m needs the dense route, whether it carries a
// DoRA magnitude, or an error for algorithms that need the base weight.
func classify(m *lora.Module) (dense, dora bool, err error) {
	for _, a := range m.Algorithms() {
		switch a {
		case "lora":
		case "dora":
			dora = true
		case "lokr", "loha", "full":
			dense = true
		default:
			return false, false, fmt.Errorf("%s modules depend on the base weight and cannot be merged into a LoRA (merge them into a checkpoint with --base)", a)
		}
	}
	return dense, dora, nil
}

// withoutDoRA returns m without its magnitude tensor.
func withoutDoRA(m *lora.Module) *lora.Module {
	c := *m
	c.Tensors = map[string]lora.TensorRef{}
	for r, t := range m.Tensors {
		if r != lora.RoleDoRAScale {
			c.Tensors[r] = t
		}
	}
	return &c
}

// rankOption is the error for a LyCORIS input merged without a rank.
func rankOption(m *lora.Module) error {
	return fmt.Errorf("%s is a %s module: merging it into a LoRA re-factors its delta by SVD and needs --rank N or --rank-rule (e.g. --rank 32 or --rank-rule sv_fro:0.99)", m.Prefix, strings.Join(m.Algorithms(), "+"))
}

// denseContribution computes a module's dense delta scaled by its alpha
// scale and the input's strength, as rows×cols (conv kernels flattened
// into cols), plus its bias delta (diff_b) if any.
func denseContribution(f *safetensors.File, m *lora.Module, in Input) (contribution, arch.Target, error) {
	var c contribution
	t := *m.Target
	s := in.StrengthModel
	if t.Component != arch.DiffusionModel {
		s = in.StrengthClip
	}
	_, bw := in.LBW.Of(t) // block weight (1 without lbw=)
	s *= bw
	am := &adapter.Module{Tensors: map[string]*adapter.Tensor{}}
	algo := adapter.Algo("")
	for _, a := range m.Algorithms() {
		if x, ok := denseAlgos[a]; ok && (algo == "" || x != adapter.Diff) {
			algo = x
		}
		if a == "lora" {
			algo = adapter.LoRA
		}
	}
	var bias []float32
	for role, ref := range m.Tensors {
		ti, ok := f.Lookup(ref.Key)
		if !ok {
			return c, t, fmt.Errorf("missing %s", role)
		}
		v, err := f.Float32(ti, nil)
		if err != nil {
			return c, t, err
		}
		if role == lora.RoleDiffB {
			bias = v
			continue
		}
		sh := make([]int, len(ti.Shape))
		for i, d := range ti.Shape {
			sh[i] = int(d)
		}
		am.Tensors[role] = &adapter.Tensor{Shape: sh, Data: v}
	}
	rows, cols, ok := m.DeltaShape()
	if !ok && bias != nil && algo == adapter.Diff && !m.Has(lora.RoleDiff) {
		rows, cols, ok = int64(len(bias)), 0, true // a bias delta only
	}
	if !ok && t.Slice == nil && len(t.Shape) >= 1 {
		rows, cols, ok = t.Shape[0], 1, true
		for _, d := range t.Shape[1:] {
			cols *= d
		}
	}
	if !ok {
		return c, t, fmt.Errorf("the shape of its delta is unknown")
	}
	c.coef = s
	c.dRows, c.dCols = int(rows), int(cols)
	if cols > 0 {
		shape := []int{int(rows), int(cols)}
		if len(t.Shape) > 2 {
			inner := int64(1)
			for _, d := range t.Shape[2:] {
				inner *= d
			}
			if cols%inner == 0 && inner > 1 {
				shape = []int{int(rows), int(cols / inner)}
				for _, d := range t.Shape[2:] {
					shape = append(shape, int(d))
				}
				c.conv = []int64{t.Shape[2], t.Shape[3]}
			}
		}
		if d, ok := am.Tensors[lora.RoleDiff]; ok && len(d.Shape) == len(shape) {
			shape = d.Shape
		}
		am.Algo = algo
		lohaUp, lohaDown, isLoHa, err := adapter.LoHaFactors(am)
		if err != nil {
			return c, t, err
		}
		if k, ok, err := lokrFactored(am, s, rows, cols); err != nil {
			return c, t, err
		} else if ok && t.Slice == nil && !t.SwapScaleShift {
			c.kron = k
		} else if isLoHa && int64(lohaUp.Shape[0]) == rows && int64(lohaDown.Shape[1]) == cols {
			// exactly a LoRA of rank r1·r2 (Khatri–Rao factors): the
			// factored route re-factors it without a dense delta
			sc, err := adapter.Scale(am)
			if err != nil {
				return c, t, err
			}
			c.up, c.down, c.r = lohaUp.Data, lohaDown.Data, lohaUp.Shape[1]
			c.coef = s * float64(sc)
		} else {
			dl, err := adapter.Delta(am, shape)
			if err != nil {
				return c, t, err
			}
			for i := range dl.Data {
				dl.Data[i] *= float32(s)
			}
			c.dense = dl.Data
		}
	}
	if bias != nil {
		if len(bias) != int(rows) {
			return c, t, fmt.Errorf("diff_b has %d values for %d rows", len(bias), rows)
		}
		for i := range bias {
			bias[i] *= float32(s)
		}
		c.bias = bias
	}
	full := t
	if t.Slice != nil {
		c.rowOffset = int(t.Slice.Offset * rows / t.Slice.Size)
		full.Slice = nil
	}
	if t.SwapScaleShift {
		half := int(rows) / 2
		swap := func(v []float32, w int) []float32 {
			if v == nil {
				return nil
			}
			out := make([]float32, len(v))
			copy(out, v[half*w:])
			copy(out[(int(rows)-half)*w:], v[:half*w])
			return out
		}
		c.dense, c.bias = swap(c.dense, int(cols)), swap(c.bias, 1)
		if c.r > 0 {
			c.up = swap(c.up, c.r)
		}
		full.SwapScaleShift = false
	}
	return c, full, nil
}

// numRows is the number of rows of the target slice c covers.
func (c contribution) numRows() int {
	if c.r == 0 {
		return c.dRows
	}
	return len(c.up) / c.r
}

// numCols is the number of (flattened) input features of c.
func (c contribution) numCols() int {
	if c.r == 0 {
		return c.dCols
	}
	return len(c.down) / c.r
}

// hasDense reports whether a group needs the SVD route.
func (g *group) hasDense() bool {
	for _, c := range g.parts {
		if c.r == 0 {
			return true
		}
	}
	return false
}

// groupBias sums the parts' bias deltas (nil when none has one).
func (g *group) groupBias() []float32 {
	var b []float32
	for _, c := range g.parts {
		if c.bias == nil {
			continue
		}
		if b == nil {
			b = make([]float32, g.rows)
		}
		for i, v := range c.bias {
			b[c.rowOffset+i] += v
		}
	}
	return b
}

// refactorDense sums every part's delta of g into one dense matrix and
// re-factors it by SVD: rank k is --rank (capped by the matrix), or what
// rule selects on the spectrum (capped by --rank when given; beyond a
// truncated spectrum the rule sees the exactly known remaining energy).
// It returns up (rows×k, √S folded in), down (k×cols), k, and the kept and
// total squared Frobenius norms.
func refactorDense(g *group, rank int, rule *svd.Rule) (up, down []float32, k int, kept, total float64, err error) {
	if g.cols == 0 {
		return nil, nil, 0, 0, 0, nil // only bias deltas
	}
	if c := g.parts[0]; len(g.parts) == 1 && c.kron != nil && c.kron.rows() == g.rows {
		// one LoKr delta: its SVD from the Kronecker factors, exactly
		u, dn, k, spec, total, err := svd.KronTruncate(c.kron.a, c.kron.b, c.kron.scale, rank, rule)
		if err != nil {
			return nil, nil, 0, 0, 0, err
		}
		for _, v := range spec[:k] {
			kept += v * v
		}
		return u.Data, dn.Data, k, kept, total, nil
	}
	var d []float32
	if c := g.parts[0]; len(g.parts) == 1 && c.r == 0 && len(c.dense) == g.rows*g.cols {
		d = c.dense // one dense delta covering the weight: no copy
	} else {
		d = make([]float32, g.rows*g.cols)
	}
	for _, c := range g.parts {
		if len(c.dense) > 0 && &c.dense[0] == &d[0] {
			continue
		}
		off := c.rowOffset * g.cols
		if c.kron != nil {
			c.kron.addTo(d[off:], g.cols)
			continue
		}
		if c.r == 0 {
			if c.dense == nil {
				continue
			}
			for i, v := range c.dense {
				d[off+i] += v
			}
			continue
		}
		coef := float32(c.coef)
		rows := len(c.up) / c.r
		for i := 0; i < rows; i++ {
			row := d[off+i*g.cols : off+(i+1)*g.cols]
			for q := 0; q < c.r; q++ {
				u := c.up[i*c.r+q] * coef
				if u == 0 {
					continue
				}
				dn := c.down[q*g.cols : (q+1)*g.cols]
				for j, v := range dn {
					row[j] += u * v
				}
			}
		}
	}
	res, k, err := svd.TruncateDense(svd.Dense{Rows: g.rows, Cols: g.cols, Data: d}, rank, rule)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	spec := res.Spectrum()
	u, dn := res.Factors(k, svd.SplitSqrt)
	for _, v := range spec[:k] {
		kept += v * v
	}
	return u.Data, dn.Data, k, kept, res.TotalFro2, nil
}

// mergeAlgos adds the algorithms in b to a (sorted, unique).
func mergeAlgos(a, b []string) []string {
	for _, x := range b {
		found := false
		for _, y := range a {
			found = found || x == y
		}
		if !found {
			a = append(a, x)
		}
	}
	sort.Strings(a)
	return a
}

// printRetained lists each re-factored module's rank and retained
// Frobenius fraction (the text form of the report's modules).
func printRetained(w io.Writer, rep *LoRAMergeReport) {
	for _, m := range rep.Modules {
		algos := "lora"
		if len(m.Algorithms) > 0 {
			algos = strings.Join(m.Algorithms, "+")
		}
		fmt.Fprintf(w, "%-72s %-10s rank %4d  retained %.4f\n", m.Name, algos, m.Rank, m.Retained)
	}
}

// kronDelta is a LoKr delta scale·kron(a, b) kept as its factors (conv
// kernels flattened into the columns of b).
type kronDelta struct {
	a, b  svd.Dense
	scale float64
}

func (k *kronDelta) rows() int { return k.a.Rows * k.b.Rows }

// addTo adds the delta into d (row-major, cols columns).
func (k *kronDelta) addTo(d []float32, cols int) {
	for ia := 0; ia < k.a.Rows; ia++ {
		for ja := 0; ja < k.a.Cols; ja++ {
			x := float32(k.scale) * k.a.Data[ia*k.a.Cols+ja]
			if x == 0 {
				continue
			}
			for ib := 0; ib < k.b.Rows; ib++ {
				row := d[(ia*k.b.Rows+ib)*cols+ja*k.b.Cols:]
				src := k.b.Data[ib*k.b.Cols : (ib+1)*k.b.Cols]
				for jb, v := range src {
					row[jb] += x * v
				}
			}
		}
	}
}

// lokrFactored returns a LoKr module's delta (strength s and alpha scale
// folded into scale) as Kronecker factors, when it is a LoKr module whose
// factors make a rows×cols delta.
func lokrFactored(am *adapter.Module, s float64, rows, cols int64) (*kronDelta, bool, error) {
	if am.Algo != adapter.LoKr {
		return nil, false, nil
	}
	w1, w2, err := adapter.LoKrFactors(am)
	if err != nil {
		return nil, false, err
	}
	if int64(w1.Shape[0]*w2.Shape[0]) != rows || int64(w1.Shape[1]*w2.Shape[1]) != cols {
		return nil, false, nil
	}
	sc, err := adapter.Scale(am)
	if err != nil {
		return nil, false, err
	}
	return &kronDelta{
		a:     svd.Dense{Rows: w1.Shape[0], Cols: w1.Shape[1], Data: w1.Data},
		b:     svd.Dense{Rows: w2.Shape[0], Cols: w2.Shape[1], Data: w2.Data},
		scale: float64(sc) * s,
	}, true, nil
}
