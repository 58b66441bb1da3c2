package inspect

import (
	"math"
	"sort"
	"strings"

	"github.com/loratool/loratool/adapter"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// blockOf names the block a native module or tensor name belongs to: the
// path up to and including the first numeric component (two for UNet
// "input_blocks.4.1"-style names), e.g. "double_blocks.7",
// "input_blocks.4", "text_model.encoder.layers.3".
func blockOf(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p != "" && p[0] >= '0' && p[0] <= '9' {
			return strings.Join(parts[:i+1], ".")
		}
	}
	if len(parts) > 2 {
		return strings.Join(parts[:2], ".")
	}
	return parts[0]
}

// computeStats reads every tensor once. For LoRA files a block's norm is
// the Frobenius norm of its modules' weight deltas at strength 1 (computed
// from the factors without forming the product); otherwise the Frobenius
// norm of the block's tensors.
func computeStats(f *safetensors.File, an *lora.Analysis, fit lora.Fit, isLoRA bool) *Stats {
	s := &Stats{}
	blocks := map[string]*BlockStats{}
	get := func(b string) *BlockStats {
		bs := blocks[b]
		if bs == nil {
			bs = &BlockStats{Block: b}
			blocks[b] = bs
		}
		return bs
	}
	var buf []float32
	moduleOf := map[string]*lora.Module{}
	if isLoRA {
		for _, m := range an.Modules {
			for _, t := range m.Tensors {
				moduleOf[t.Key] = m
			}
		}
	}
	for _, t := range f.Tensors {
		block := blockOf(t.Name)
		if m := moduleOf[t.Name]; m != nil {
			block = moduleBlock(m)
		}
		bs := get(block)
		bs.Tensors++
		if !t.DType.IsFloat() {
			continue
		}
		v, err := f.Float32(t, buf)
		if err != nil {
			continue
		}
		buf = v
		var sq float64
		for _, x := range v {
			switch {
			case math.IsNaN(float64(x)):
				bs.NaN++
			case math.IsInf(float64(x), 0):
				bs.Inf++
			default:
				sq += float64(x) * float64(x)
			}
		}
		if !isLoRA || moduleOf[t.Name] == nil {
			bs.Norm += sq // squared for now
		}
	}
	if isLoRA {
		for _, m := range an.Modules {
			n2, ok := deltaNorm2(f, m)
			if !ok {
				n2, ok = denseDeltaNorm2(f, m)
			}
			if !ok {
				// weight-dependent algorithms (OFT, GLoRA, DoRA, IA3): the
				// norm of the module's own tensors
				for _, t := range m.Tensors {
					if ti, found := f.Lookup(t.Key); found && ti.DType.IsFloat() {
						if v, err := f.Float32(ti, nil); err == nil {
							for _, x := range v {
								n2 += float64(x) * float64(x)
							}
						}
					}
				}
			}
			get(moduleBlock(m)).Norm += n2
		}
	}
	for _, bs := range blocks {
		bs.Norm = math.Sqrt(bs.Norm)
		s.NaN += bs.NaN
		s.Inf += bs.Inf
		s.Blocks = append(s.Blocks, *bs)
	}
	sort.Slice(s.Blocks, func(i, j int) bool { return naturalLess(s.Blocks[i].Block, s.Blocks[j].Block) })
	if isLoRA {
		sortBlocks(s.Blocks, fit)
	}
	return s
}

// deltaNorm2 is ‖scale·up@down‖_F² = scale²·trace((upᵀup)(down downᵀ)),
// an r×r computation.
func deltaNorm2(f *safetensors.File, m *lora.Module) (float64, bool) {
	upRef, ok1 := m.Tensors[lora.RoleUp]
	downRef, ok2 := m.Tensors[lora.RoleDown]
	if !ok1 || !ok2 || m.Has(lora.RoleMid) {
		return 0, false
	}
	upI, ok1 := f.Lookup(upRef.Key)
	downI, ok2 := f.Lookup(downRef.Key)
	if !ok1 || !ok2 || len(upI.Shape) < 2 || len(downI.Shape) < 2 {
		return 0, false
	}
	up, err1 := f.Float32(upI, nil)
	down, err2 := f.Float32(downI, nil)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	r := int(downI.Shape[0])
	out := int(upI.Shape[0])
	if r == 0 || len(up) != out*r {
		return 0, false
	}
	in := len(down) / r
	// G = upᵀup (r×r), H = down downᵀ (r×r), ‖ΔW‖² = Σ_ij G_ij H_ij
	g := make([]float64, r*r)
	for o := 0; o < out; o++ {
		row := up[o*r : (o+1)*r]
		for i := 0; i < r; i++ {
			for j := 0; j < r; j++ {
				g[i*r+j] += float64(row[i]) * float64(row[j])
			}
		}
	}
	var n2 float64
	for i := 0; i < r; i++ {
		di := down[i*in : (i+1)*in]
		for j := 0; j < r; j++ {
			dj := down[j*in : (j+1)*in]
			var h float64
			for k := range di {
				h += float64(di[k]) * float64(dj[k])
			}
			n2 += g[i*r+j] * h
		}
	}
	scale := 1.0
	if a, ok := m.Tensors[lora.RoleAlpha]; ok {
		if ai, ok := f.Lookup(a.Key); ok {
			if v, err := f.Float32(ai, nil); err == nil && len(v) == 1 && r > 0 {
				scale = float64(v[0]) / float64(r)
			}
		}
	}
	return n2 * scale * scale, true
}

// naturalLess orders names with embedded numbers numerically.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := 0, 0
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// denseDeltaNorm2 is ‖scale·ΔW‖_F² for algorithms whose delta does not
// depend on the base weight (LoHa, LoKr, full diffs), computed densely.
func denseDeltaNorm2(f *safetensors.File, m *lora.Module) (float64, bool) {
	rows, cols, ok := m.DeltaShape()
	if !ok || rows*cols > 1<<26 {
		return 0, false
	}
	algo := ""
	for _, a := range m.Algorithms() {
		switch a {
		case "loha", "lokr", "full":
			algo = a
		case "dora":
			return 0, false
		}
	}
	if algo == "" {
		return 0, false
	}
	am := &adapter.Module{Algo: adapter.Algo(algo), Tensors: map[string]*adapter.Tensor{}}
	for role, t := range m.Tensors {
		if role == lora.RoleDiffB {
			continue
		}
		ti, found := f.Lookup(t.Key)
		if !found {
			return 0, false
		}
		v, err := f.Float32(ti, nil)
		if err != nil {
			return 0, false
		}
		shape := make([]int, len(ti.Shape))
		for i, d := range ti.Shape {
			shape[i] = int(d)
		}
		am.Tensors[role] = &adapter.Tensor{Shape: shape, Data: v}
	}
	d, err := adapter.Delta(am, []int{int(rows), int(cols)})
	if err != nil {
		return 0, false
	}
	var n2 float64
	for _, x := range d.Data {
		n2 += float64(x) * float64(x)
	}
	return n2, true
}
