package inspect

import (
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// statsChunk is the number of values decoded at a time by chunked.
const statsChunk = 1 << 20

// chunked decodes a float tensor to float32 a chunk at a time and calls fn
// on each chunk, so memory stays at one chunk whatever the tensor's size.
// It returns the (reusable) buffer and false when the tensor cannot be
// decoded.
func chunked(f *safetensors.File, t safetensors.TensorInfo, buf []float32, fn func([]float32)) ([]float32, bool) {
	if !t.DType.CanDecode() {
		return buf, false
	}
	es := int64(t.DType.BitSize() / 8)
	raw := f.Bytes(t)
	n := t.NumElements()
	if es == 0 || int64(len(raw)) != n*es {
		return buf, false
	}
	if cap(buf) < statsChunk {
		buf = make([]float32, statsChunk)
	}
	for lo := int64(0); lo < n; lo += statsChunk {
		hi := min(n, lo+statsChunk)
		v := buf[:hi-lo]
		if err := dtype.Decode(t.DType, raw[lo*es:hi*es], v); err != nil {
			return buf, false
		}
		fn(v)
	}
	f.Release(t)
	return buf, true
}
