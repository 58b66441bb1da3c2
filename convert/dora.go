package convert

import "fmt"

// DoRA magnitudes along the output axis (PEFT lora_magnitude_vector [out],
// LyCORIS dora_scale [out, 1(,1,1)] with wd_on_out) normalise each output
// row on its own: W'_i = m_i·(W_i + ΔW_i)/‖W_i + ΔW_i‖. Cutting or joining
// a weight by rows therefore cuts or joins the magnitude by the same rows,
// exactly. A magnitude along the input axis (LyCORIS dora_scale [1, in],
// wd_on_out=False) mixes every row of the weight and cannot be cut.

// doraRows returns a module's magnitude as one value per output row.
func doraRows(lm *loraMod, what string) ([]float32, error) {
	d := lm.dora
	n := int64(1)
	for _, x := range d.shape[1:] {
		n *= x
	}
	if len(d.shape) == 0 || n != 1 || d.shape[0] != int64(lm.rows) {
		return nil, fmt.Errorf("its DoRA magnitude %v is not along the output axis (%d rows); %s would need the base weight", d.shape, lm.rows, what)
	}
	return d.floats()
}

// doraLike returns values as a magnitude in the layout of like
// ([rows] or [rows, 1, …]) with rows values.
func doraLike(like *val, values []float32) *val {
	sh := []int64{int64(len(values))}
	for range like.shape[1:] {
		sh = append(sh, 1)
	}
	return computed(like.dt, sh, values)
}

// fuseDoRA joins the slices' magnitudes into the fused weight's; every
// row must be covered by a DoRA slice (a row without a magnitude would
// need its base-weight norm).
func fuseDoRA(parts []*module, rows int) (*val, error) {
	var first *val
	withDoRA := 0
	for _, p := range parts {
		if p.lora.dora != nil {
			withDoRA++
			if first == nil {
				first = p.lora.dora
			}
		}
	}
	if withDoRA == 0 {
		return nil, nil
	}
	out := make([]float32, rows)
	covered := 0
	for _, p := range parts {
		if p.lora.dora == nil {
			return nil, fmt.Errorf("module %s has no DoRA magnitude while other slices of %s have one; the fused weight's magnitude would need the base weight", p.src.Prefix, p.t.Module)
		}
		v, err := doraRows(p.lora, "fusing")
		if err != nil {
			return nil, fmt.Errorf("module %s: %v", p.src.Prefix, err)
		}
		copy(out[int(p.act.Offset):], v)
		covered += len(v)
	}
	if covered != rows {
		return nil, fmt.Errorf("the DoRA slices of %s cover %d of its %d rows; the other rows' magnitude would need the base weight", parts[0].t.Module, covered, rows)
	}
	return doraLike(first, out), nil
}

// swapDoRA swaps the magnitude's halves with the rows (scale/shift swap).
func swapDoRA(lm *loraMod) error {
	v, err := doraRows(lm, "swapping scale and shift")
	if err != nil {
		return err
	}
	h := len(v) / 2
	lm.dora = doraLike(lm.dora, append(append([]float32(nil), v[h:]...), v[:h]...))
	return nil
}
