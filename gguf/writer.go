package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"unicode/utf8"

	"github.com/loratool/loratool/safetensors"
)

// MaxWriteNameLen is the longest tensor name the writer accepts: the limit
// of ComfyUI-GGUF's converter (ggml's own loader stops at 63 bytes).
const MaxWriteNameLen = 127

// TensorSpec describes a tensor to be written.
type TensorSpec struct {
	Name string
	Type Type
	// Shape is in PyTorch order (the file stores it reversed).
	Shape []int64
}

// Writer streams a GGUF v3 file: the header first, then each tensor's data
// in the order given to Create, each aligned to 32 bytes, with trailing
// padding. It writes to a temporary file next to the destination and
// renames it into place on Commit (the safetensors writer's machinery:
// fsync, rename, directory fsync, removal on Abort or on SIGINT/SIGTERM).
type Writer struct {
	path   string
	w      *safetensors.Writer
	specs  []TensorSpec
	sizes  []int64
	next   int
	pad    []byte
	scrat  []byte
	qbuf   []float32
	header int64
}

const writeAlignment = DefaultAlignment

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendScalar(b []byte, v any) []byte {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		return appendString(b, x)
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	}
	panic("unreachable")
}

func appendSlice[T any](b []byte, et ValueType, s []T) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(et))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	for _, v := range s {
		b = appendScalar(b, v)
	}
	return b
}

func appendValue(b []byte, v any) []byte {
	t, et, _ := typeOf(v)
	b = binary.LittleEndian.AppendUint32(b, uint32(t))
	if t != TypeArray {
		return appendScalar(b, v)
	}
	switch x := v.(type) {
	case []uint8:
		return appendSlice(b, et, x)
	case []int8:
		return appendSlice(b, et, x)
	case []uint16:
		return appendSlice(b, et, x)
	case []int16:
		return appendSlice(b, et, x)
	case []uint32:
		return appendSlice(b, et, x)
	case []int32:
		return appendSlice(b, et, x)
	case []float32:
		return appendSlice(b, et, x)
	case []bool:
		return appendSlice(b, et, x)
	case []string:
		return appendSlice(b, et, x)
	case []uint64:
		return appendSlice(b, et, x)
	case []int64:
		return appendSlice(b, et, x)
	case []float64:
		return appendSlice(b, et, x)
	}
	panic("unreachable")
}

func alignUp(n int64) int64 { return (n + writeAlignment - 1) / writeAlignment * writeAlignment }

// buildHeader validates the metadata and tensors and returns the encoded
// header (padded to the alignment) and each tensor's byte size.
func buildHeader(kvs []KV, specs []TensorSpec) ([]byte, []int64, error) {
	b := []byte(Magic)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(specs)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	seen := map[string]bool{}
	for _, kv := range kvs {
		switch {
		case kv.Key == "" || !utf8.ValidString(kv.Key) || len(kv.Key) > MaxKeyLen:
			return nil, nil, fmt.Errorf("invalid metadata key %q", kv.Key)
		case seen[kv.Key]:
			return nil, nil, fmt.Errorf("duplicate metadata key %q", kv.Key)
		case kv.Key == "general.alignment":
			if a, ok := kv.Value.(uint32); !ok || a != writeAlignment {
				return nil, nil, fmt.Errorf("general.alignment must be UINT32 %d", writeAlignment)
			}
		}
		if _, _, ok := typeOf(kv.Value); !ok {
			return nil, nil, fmt.Errorf("metadata %q: unsupported value type %T", kv.Key, kv.Value)
		}
		seen[kv.Key] = true
		b = appendString(b, kv.Key)
		b = appendValue(b, kv.Value)
	}
	sizes := make([]int64, len(specs))
	names := map[string]bool{}
	var off int64
	for i, s := range specs {
		switch {
		case s.Name == "" || !utf8.ValidString(s.Name):
			return nil, nil, fmt.Errorf("invalid tensor name %q", s.Name)
		case len(s.Name) > MaxWriteNameLen:
			return nil, nil, fmt.Errorf("tensor name %q is longer than %d bytes", s.Name, MaxWriteNameLen)
		case names[s.Name]:
			return nil, nil, fmt.Errorf("duplicate tensor name %q", s.Name)
		case len(s.Shape) == 0 || len(s.Shape) > MaxDims:
			return nil, nil, fmt.Errorf("tensor %q: %d dimensions (1 to %d allowed)", s.Name, len(s.Shape), MaxDims)
		case !s.Type.Known():
			return nil, nil, fmt.Errorf("tensor %q: unknown type %v", s.Name, s.Type)
		}
		names[s.Name] = true
		n := int64(1)
		for _, d := range s.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt64/d) {
				return nil, nil, fmt.Errorf("tensor %q: invalid shape %v", s.Name, s.Shape)
			}
			n *= d
		}
		if bs := int64(s.Type.BlockSize()); s.Shape[len(s.Shape)-1]%bs != 0 {
			return nil, nil, fmt.Errorf("tensor %q: last dimension %d is not a multiple of the %v block size %d", s.Name, s.Shape[len(s.Shape)-1], s.Type, bs)
		}
		size, err := s.Type.RowSize(n)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", s.Name, err)
		}
		sizes[i] = size
		b = appendString(b, s.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Shape)))
		for j := len(s.Shape) - 1; j >= 0; j-- {
			b = binary.LittleEndian.AppendUint64(b, uint64(s.Shape[j]))
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(s.Type))
		b = binary.LittleEndian.AppendUint64(b, uint64(off))
		off = alignUp(off + size)
	}
	for int64(len(b))%writeAlignment != 0 {
		b = append(b, 0)
	}
	return b, sizes, nil
}

// Create validates kvs and specs and starts writing path. Tensors must
// then be written in the order of specs.
func Create(path string, kvs []KV, specs []TensorSpec) (*Writer, error) {
	hdr, sizes, err := buildHeader(kvs, specs)
	if err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	total := int64(len(hdr))
	for _, s := range sizes {
		total += alignUp(s)
	}
	sw, err := safetensors.CreateRaw(path, total)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, w: sw, specs: specs, sizes: sizes, pad: make([]byte, writeAlignment), header: int64(len(hdr))}
	if err := sw.WriteRaw(hdr); err != nil {
		sw.Abort()
		return nil, err
	}
	return w, nil
}

// FileSize returns the size of the finished file.
func (w *Writer) FileSize() int64 { return w.w.FileSize() }

// SetProgress installs fn, called with the number of bytes written.
func (w *Writer) SetProgress(fn func(int64)) { w.w.SetProgress(fn) }

func (w *Writer) check(name string) (int, error) {
	if w.next >= len(w.specs) {
		return 0, &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: all %d tensors are already written", name, len(w.specs))}
	}
	if want := w.specs[w.next].Name; want != name {
		return 0, &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q written out of order: expected %q", name, want)}
	}
	return w.next, nil
}

func (w *Writer) finishTensor(i int) error {
	if p := alignUp(w.sizes[i]) - w.sizes[i]; p > 0 {
		if err := w.w.WriteRaw(w.pad[:p]); err != nil {
			return err
		}
	}
	w.next++
	return nil
}

// Write writes the raw bytes of the next tensor.
func (w *Writer) Write(name string, data []byte) error {
	i, err := w.check(name)
	if err != nil {
		return err
	}
	if int64(len(data)) != w.sizes[i] {
		return &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: got %d bytes, want %d", name, len(data), w.sizes[i])}
	}
	if err := w.w.WriteRaw(data); err != nil {
		return err
	}
	return w.finishTensor(i)
}

// WriteFrom writes the next tensor by copying its bytes from src at off
// inside the kernel (copy_file_range) where possible.
func (w *Writer) WriteFrom(name string, src *os.File, off, n int64) error {
	i, err := w.check(name)
	if err != nil {
		return err
	}
	if n != w.sizes[i] {
		return &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: got %d bytes, want %d", name, n, w.sizes[i])}
	}
	if err := w.w.CopyRaw("tensor "+name, src, off, n); err != nil {
		return err
	}
	return w.finishTensor(i)
}

// WriteFloat32 quantizes vals to the next tensor's type and writes them.
// Rows are quantized in parallel on up to workers goroutines (0: one).
func (w *Writer) WriteFloat32(name string, vals []float32, workers int) error {
	i, err := w.check(name)
	if err != nil {
		return err
	}
	s := w.specs[i]
	if !s.Type.CanQuantize() {
		return &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: cannot quantize to %v", name, s.Type)}
	}
	if int64(cap(w.scrat)) < w.sizes[i] {
		w.scrat = make([]byte, w.sizes[i])
	}
	buf := w.scrat[:w.sizes[i]]
	if err := QuantizeParallel(s.Type, vals, buf, workers); err != nil {
		return &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: %v", name, err)}
	}
	if len(buf) > 64<<20 {
		w.scrat = nil // do not keep a huge buffer alive
	}
	if err := w.w.WriteRaw(buf); err != nil {
		return err
	}
	return w.finishTensor(i)
}

// Commit finishes the file (all tensors must be written), syncs it and
// renames it into place.
func (w *Writer) Commit() error {
	if w.next < len(w.specs) {
		w.w.Abort()
		return &Error{Path: w.path, Msg: fmt.Sprintf("commit before all tensors were written (%d of %d)", w.next, len(w.specs))}
	}
	return w.w.Commit()
}

// Abort removes the temporary file; the destination is left untouched.
func (w *Writer) Abort() { w.w.Abort() }
