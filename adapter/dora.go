package adapter

import (
	"fmt"
	"math"
)

// doraEps is torch.finfo(torch.float32).eps, added to every DoRA norm.
const doraEps float32 = 1.1920929e-07

// checkDoRA validates dora_scale against a weight shape before anything is
// modified.
func checkDoRA(wShape []int, ds *Tensor) error {
	nShape, err := doraNormShape(wShape, ds)
	if err != nil {
		return err
	}
	fs, ok := broadcastShape(ds.Shape, nShape)
	if !ok {
		return fmt.Errorf("adapter: dora: shape mismatch: dora_scale %v vs norm %v", ds.Shape, nShape)
	}
	if bs, ok := broadcastShape(wShape, fs); !ok || !sameShape(bs, wShape) {
		return fmt.Errorf("adapter: dora: shape mismatch: dora_scale %v cannot scale weight %v", ds.Shape, wShape)
	}
	return nil
}

// doraOutputAxis reports ComfyUI's branch test dora_scale.shape[0] == W.shape[0].
func doraOutputAxis(wShape []int, ds *Tensor) bool {
	return len(ds.Shape) > 0 && len(wShape) > 0 && ds.Shape[0] == wShape[0]
}

// doraNormShape returns the shape of the norm tensor: [out,1,…] on the
// output axis, [1,in,1,…] on the input axis.
func doraNormShape(wShape []int, ds *Tensor) ([]int, error) {
	if len(ds.Shape) == 0 {
		return nil, fmt.Errorf("adapter: dora: dora_scale is a scalar")
	}
	if len(wShape) == 0 {
		return nil, fmt.Errorf("adapter: dora: weight is a scalar")
	}
	s := make([]int, len(wShape))
	for i := range s {
		s[i] = 1
	}
	if doraOutputAxis(wShape, ds) {
		s[0] = wShape[0]
		return s, nil
	}
	if len(wShape) < 2 {
		return nil, fmt.Errorf("adapter: dora: input-axis dora_scale %v needs a 2+-D weight, have %v", ds.Shape, wShape)
	}
	s[1] = wShape[1]
	return s, nil
}

// applyDoRA is ComfyUI's weight_decompose: W_c = W + float32(scale)·ΔW; the
// norm is per output row (of the original W with the ComfyUI quirk, of W_c
// otherwise) when dora_scale.shape[0] == W.shape[0], else per input column
// of W_c; norm += eps; W_c *= dora_scale/norm (broadcast); W = W_c when s = 1,
// else W += s·(W_c − W).
func applyDoRA(w *Tensor, diff []float32, scale float64, opt Options, ds *Tensor) error {
	if err := checkDoRA(w.Shape, ds); err != nil {
		return err
	}
	if len(diff) != len(w.Data) {
		return fmt.Errorf("adapter: dora: shape mismatch: delta has %d elements, weight %v", len(diff), w.Shape)
	}
	nShape, _ := doraNormShape(w.Shape, ds)
	sc := float32(scale)
	wc := make([]float32, len(w.Data))
	for i := range wc {
		wc[i] = w.Data[i] + float32(diff[i]*sc)
	}
	out := w.Shape[0]
	var norm []float32
	if doraOutputAxis(w.Shape, ds) {
		src := wc
		if opt.DoRAComfyQuirk {
			src = w.Data
		}
		norm = make([]float32, out)
		if out > 0 {
			rowLen := len(src) / out
			for o := 0; o < out; o++ {
				var acc float64
				for _, v := range src[o*rowLen : (o+1)*rowLen] {
					acc += float64(v) * float64(v)
				}
				norm[o] = float32(math.Sqrt(acc)) + doraEps
			}
		}
	} else {
		in := w.Shape[1]
		norm = make([]float32, in)
		acc := make([]float64, in)
		inner := 1
		for _, d := range w.Shape[2:] {
			inner *= d
		}
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				base := (o*in + i) * inner
				for _, v := range wc[base : base+inner] {
					acc[i] += float64(v) * float64(v)
				}
			}
		}
		for i := range norm {
			norm[i] = float32(math.Sqrt(acc[i])) + doraEps
		}
	}
	// factor = dora_scale / norm (broadcast), then expanded to W's shape.
	fShape, _ := broadcastShape(ds.Shape, nShape)
	dsx, _ := expandTo(ds.Data, ds.Shape, fShape)
	nx, _ := expandTo(norm, nShape, fShape)
	for i := range dsx {
		dsx[i] /= nx[i]
	}
	fx, ok := expandTo(dsx, fShape, w.Shape)
	if !ok {
		return fmt.Errorf("adapter: dora: shape mismatch: dora_scale %v cannot scale weight %v", ds.Shape, w.Shape)
	}
	for i := range wc {
		wc[i] *= fx[i]
	}
	if opt.Strength != 1 {
		s := opt.Strength
		for i := range w.Data {
			w.Data[i] += float32(s * (wc[i] - w.Data[i]))
		}
	} else {
		copy(w.Data, wc)
	}
	return nil
}
