package gguf

import (
	"fmt"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

type viewDecoder struct{ f *File }

func (v viewDecoder) DecodeFloat32(t safetensors.TensorInfo, dst []float32) ([]float32, error) {
	gt, ok := v.f.Lookup(t.Name)
	if !ok {
		return nil, &Error{Path: v.f.Path, Msg: fmt.Sprintf("no tensor %q", t.Name)}
	}
	out, err := v.f.Float32(gt, dst)
	v.f.Release(gt)
	return out, err
}

func (v viewDecoder) Close() error { return v.f.Close() }

// SafetensorsView presents f as a header-only safetensors file whose
// tensors decode (dequantize) to float32 with their model shapes
// (comfy.gguf.orig_shape applied), so code written for safetensors
// checkpoints reads GGUF files unchanged. Closing the view closes f.
func SafetensorsView(f *File) (*safetensors.File, error) {
	ts := make([]safetensors.TensorInfo, 0, len(f.Tensors))
	var off int64
	for _, t := range f.Tensors {
		shape, err := f.ModelShape(t)
		if err != nil {
			return nil, &Error{Path: f.Path, Msg: err.Error()}
		}
		n := t.NumElements() * 4
		ts = append(ts, safetensors.TensorInfo{Name: t.Name, DType: dtype.F32, Shape: shape, Begin: off, End: off + n})
		off += n
	}
	return safetensors.NewView(f.Path, ts, viewDecoder{f}), nil
}

// OpenView opens a GGUF file as a SafetensorsView.
func OpenView(path string) (*safetensors.File, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	v, err := SafetensorsView(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return v, nil
}
