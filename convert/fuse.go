package convert

import (
	"fmt"
	"math"
	"sort"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
)

// fuse stacks LoRAs on slices of one fused weight into one LoRA on the
// whole weight: down = concat(down_i), up = block-diagonal(up_i) placed at
// each slice's rows, per-column scales kept. ΔW is identical: every row of
// the product sums exactly the same terms plus exact zeros.
func fuse(parts []*module, total int64) (*loraMod, error) {
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].act.Offset < parts[j].act.Offset })
	var r, cols int
	var downShape []int64
	for i, p := range parts {
		lm := p.lora
		if lm == nil || p.act == nil {
			return nil, fmt.Errorf("module %s cannot be fused", p.src.Prefix)
		}
		if lm.mid != nil {
			return nil, fmt.Errorf("module %s: Tucker LoRAs on slices of %s cannot be fused exactly", p.src.Prefix, p.t.Module)
		}
		if i > 0 && p.act.Offset < parts[i-1].act.Offset+parts[i-1].act.Size {
			return nil, fmt.Errorf("modules %s and %s overlap in %s", parts[i-1].src.Prefix, p.src.Prefix, p.t.Module)
		}
		if i == 0 {
			cols, downShape = lm.cols, lm.down.shape
		} else if lm.cols != cols || len(lm.down.shape) != len(downShape) {
			return nil, fmt.Errorf("modules %s and %s of %s have different input shapes", parts[0].src.Prefix, p.src.Prefix, p.t.Module)
		}
		if p.total != total {
			return nil, fmt.Errorf("module %s implies %d rows of %s, another %d", p.src.Prefix, p.total, p.t.Module, total)
		}
		r += lm.r
	}
	rows := int(total)
	up := make([]float32, rows*r)
	down := make([]float32, 0, r*cols)
	scale := make([]float64, 0, r)
	var diffB []float32
	col := 0
	first := parts[0].lora
	out := &loraMod{rows: rows, r: r, cols: cols, uniformSrc: true}
	for _, p := range parts {
		lm := p.lora
		u, err := lm.up.floats()
		if err != nil {
			return nil, err
		}
		d, err := lm.down.floats()
		if err != nil {
			return nil, err
		}
		off := int(p.act.Offset)
		for i := 0; i < lm.rows; i++ {
			copy(up[(off+i)*r+col:(off+i)*r+col+lm.r], u[i*lm.r:(i+1)*lm.r])
		}
		down = append(down, d...)
		scale = append(scale, lm.scale...)
		if lm.diffB != nil {
			if diffB == nil {
				diffB = make([]float32, rows)
			}
			b, err := lm.diffB.floats()
			if err != nil {
				return nil, err
			}
			if len(b) != lm.rows {
				return nil, fmt.Errorf("module %s: bias delta of %d values for %d rows", p.src.Prefix, len(b), lm.rows)
			}
			copy(diffB[off:], b)
		}
		col += lm.r
		if !lm.uniformSrc || lm.scale[0] != first.scale[0] {
			out.uniformSrc = false
		}
	}
	upShape := append([]int64{int64(rows), int64(r)}, first.up.shape[2:]...)
	ds := append([]int64{int64(r)}, downShape[1:]...)
	out.up = computed(first.up.dt, upShape, up)
	out.down = computed(first.down.dt, ds, down)
	out.scale = scale
	dora, err := fuseDoRA(parts, rows)
	if err != nil {
		return nil, err
	}
	out.dora = dora
	if diffB != nil {
		out.diffB = computed(dtype.F32, []int64{int64(rows)}, diffB)
		for _, p := range parts {
			if p.lora.diffB != nil {
				out.diffB.dt = p.lora.diffB.dt
				break
			}
		}
	}
	return out, nil
}

// split cuts a LoRA on a whole fused weight into one LoRA per slice: the
// rows of up for each slice with the full down; columns of up that are
// exactly zero in a slice's rows are dropped with their down rows (a
// block-diagonal up, as kohya's split_qkv files have, splits back into its
// blocks). Exact either way. Slices whose up rows are all zero are left
// out when another slice is not.
func split(lm *loraMod, slices []*arch.Slice) ([]*loraMod, []bool, error) {
	if lm.mid != nil {
		return nil, nil, fmt.Errorf("Tucker LoRAs on a fused weight cannot be split exactly")
	}
	var mag []float32
	if lm.dora != nil {
		var err error
		if mag, err = doraRows(lm, "splitting the fused weight"); err != nil {
			return nil, nil, err
		}
	}
	u, err := lm.up.floats()
	if err != nil {
		return nil, nil, err
	}
	d, err := lm.down.floats()
	if err != nil {
		return nil, nil, err
	}
	var b []float32
	if lm.diffB != nil {
		if b, err = lm.diffB.floats(); err != nil {
			return nil, nil, err
		}
	}
	out := make([]*loraMod, len(slices))
	keep := make([]bool, len(slices))
	any := false
	for si, sl := range slices {
		off, n := int(sl.Offset), int(sl.Size)
		var cs []int
		for j := 0; j < lm.r; j++ {
			for i := off; i < off+n; i++ {
				if u[i*lm.r+j] != 0 {
					cs = append(cs, j)
					break
				}
			}
		}
		biasNZ := false
		for i := off; b != nil && i < off+n; i++ {
			biasNZ = biasNZ || b[i] != 0
		}
		keep[si] = len(cs) > 0 || biasNZ
		any = any || keep[si]
		if len(cs) == 0 {
			cs = []int{0}
		}
		k := len(cs)
		nu := make([]float32, n*k)
		nd := make([]float32, 0, k*lm.cols)
		sc := make([]float64, k)
		for jj, j := range cs {
			for i := 0; i < n; i++ {
				nu[i*k+jj] = u[(off+i)*lm.r+j]
			}
			nd = append(nd, d[j*lm.cols:(j+1)*lm.cols]...)
			sc[jj] = lm.scale[j]
		}
		m := &loraMod{rows: n, r: k, cols: lm.cols, scale: sc, uniformSrc: lm.uniformSrc}
		m.up = computed(lm.up.dt, append([]int64{int64(n), int64(k)}, lm.up.shape[2:]...), nu)
		m.down = computed(lm.down.dt, append([]int64{int64(k)}, lm.down.shape[1:]...), nd)
		if b != nil {
			m.diffB = computed(lm.diffB.dt, []int64{int64(n)}, append([]float32(nil), b[off:off+n]...))
		}
		if mag != nil {
			m.dora = doraLike(lm.dora, append([]float32(nil), mag[off:off+n]...))
			keep[si], any = true, true // a magnitude changes the weight even with a zero delta
		}
		out[si] = m
	}
	if !any {
		for i := range keep {
			keep[i] = true
		}
	}
	return out, keep, nil
}

// uniform returns the common scale of all columns.
func (lm *loraMod) uniform() (float64, bool) {
	for _, s := range lm.scale[1:] {
		if s != lm.scale[0] {
			return 0, false
		}
	}
	return lm.scale[0], true
}

// foldDown multiplies every down row by its column's scale; the scale
// becomes 1.
func (lm *loraMod) foldDown() error {
	d, err := lm.down.floats()
	if err != nil {
		return err
	}
	nd := make([]float32, len(d))
	for j := 0; j < lm.r; j++ {
		s := lm.scale[j]
		for c := 0; c < lm.cols; c++ {
			nd[j*lm.cols+c] = float32(float64(d[j*lm.cols+c]) * s)
		}
		lm.scale[j] = 1
	}
	lm.down = computed(lm.down.dt, lm.down.shape, nd)
	return nil
}

// foldDiffusers folds a uniform scale into the factors the way diffusers
// does (s_d = s, s_u = 1; while 2·s_d < s_u double s_d, halve s_u), so that
// powers of two stay exact; a non-uniform scale is folded into down.
func (lm *loraMod) foldDiffusers() error {
	s, ok := lm.uniform()
	if !ok {
		return lm.foldDown()
	}
	if s == 1 {
		return nil
	}
	sd, su := s, 1.0
	for s != 0 && !math.IsInf(s, 0) && 2*math.Abs(sd) < su {
		sd *= 2
		su /= 2
	}
	mul := func(v *val, f float64) (*val, error) {
		x, err := v.floats()
		if err != nil {
			return nil, err
		}
		n := make([]float32, len(x))
		for i, e := range x {
			n[i] = float32(float64(e) * f)
		}
		return computed(v.dt, v.shape, n), nil
	}
	var err error
	if lm.down, err = mul(lm.down, sd); err != nil {
		return err
	}
	if su != 1 {
		if lm.up, err = mul(lm.up, su); err != nil {
			return err
		}
	}
	for i := range lm.scale {
		lm.scale[i] = 1
	}
	return nil
}
