package adapter

import "fmt"

// applyIA3 implements LyCORIS (IA)³ merging: with v = ia3_weight
// (flattened) and f = float32(s·v) + 1, W[o,…] *= f[o] along the output dim,
// or W[o,i,…] *= f[i] along the input dim when on_input is present and
// non-zero. ComfyUI has no IA3 adapter; this follows LyCORIS's
// IA3Module.make_weight with multiplier s.
func applyIA3(w *Tensor, m *Module, opt Options) error {
	v, err := m.tensor(RoleIA3Weight)
	if err != nil {
		return err
	}
	oi, err := m.optTensor(RoleOnInput)
	if err != nil {
		return err
	}
	onInput := oi != nil && len(oi.Data) > 0 && oi.Data[0] != 0
	axis := 0
	if onInput {
		axis = 1
	}
	if len(w.Shape) <= axis {
		return fmt.Errorf("adapter: ia3: weight %v has no dim %d", w.Shape, axis)
	}
	if len(v.Data) != w.Shape[axis] {
		return fmt.Errorf("adapter: ia3: shape mismatch: ia3_weight %v vs weight %v dim %d", v.Shape, w.Shape, axis)
	}
	f := make([]float32, len(v.Data))
	for i, x := range v.Data {
		f[i] = float32(x*opt.Strength) + 1
	}
	if len(w.Data) == 0 {
		return nil
	}
	out := w.Shape[0]
	rowLen := len(w.Data) / out
	if !onInput {
		for o := 0; o < out; o++ {
			row := w.Data[o*rowLen : (o+1)*rowLen]
			for i := range row {
				row[i] *= f[o]
			}
		}
		return nil
	}
	in := w.Shape[1]
	inner := rowLen / in
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			blk := w.Data[(o*in+i)*inner : (o*in+i+1)*inner]
			for k := range blk {
				blk[k] *= f[i]
			}
		}
	}
	return nil
}

// applyDiff does W += s·diff when the shapes are equal (nothing when s = 0).
func applyDiff(w *Tensor, m *Module, opt Options) error {
	d, err := m.tensor(RoleDiff)
	if err != nil {
		return err
	}
	if !sameShape(d.Shape, w.Shape) {
		return fmt.Errorf("adapter: %s: shape mismatch: diff %v != weight %v, weight not merged", m.Algo, d.Shape, w.Shape)
	}
	if opt.Strength == 0 {
		return nil
	}
	for i := range w.Data {
		w.Data[i] += float32(opt.Strength * d.Data[i])
	}
	return nil
}

// applySet copies set_weight into W (broadcast like torch's copy_); the
// strength is ignored.
func applySet(w *Tensor, m *Module) error {
	v, err := m.tensor(RoleSetWeight)
	if err != nil {
		return err
	}
	x, ok := expandTo(v.Data, v.Shape, w.Shape)
	if !ok {
		return fmt.Errorf("adapter: set: shape mismatch: set_weight %v cannot be copied into weight %v", v.Shape, w.Shape)
	}
	copy(w.Data, x)
	return nil
}
