package convert

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/loratool/loratool/convert/pt"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// srcTensor is one tensor of an input file, described without its data.
type srcTensor struct {
	Name  string
	DType dtype.DType
	Shape []int64
}

func (t srcTensor) numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// source is an input file: a memory-mapped safetensors file or a
// pickle-free PyTorch checkpoint.
type source interface {
	Tensors() []srcTensor
	Metadata() map[string]string
	// Read returns the tensor's raw little-endian bytes. For safetensors
	// the slice is a view into the mapping, valid until Close.
	Read(t srcTensor) ([]byte, error)
	Size() int64
	Close() error
	// Skipped lists entries of a PyTorch file that hold no tensor.
	Skipped() []string
}

// isPickle reports whether path has a PyTorch extension.
func isPickle(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".ckpt", ".pt", ".pth", ".bin":
		return true
	}
	return false
}

func openSource(path string) (source, error) {
	if isPEFTDir(path) {
		return openPEFTDir(path)
	}
	if isPickle(path) {
		c, err := pt.Open(path)
		if err != nil {
			return nil, err
		}
		s := &ptSource{c: c}
		for _, t := range c.Tensors {
			d, err := dtype.Parse(t.DType)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("%s: tensor %q: %v", path, t.Name, err)
			}
			s.ts = append(s.ts, srcTensor{Name: t.Name, DType: d, Shape: t.Shape})
			s.size += t.NumBytes()
		}
		return s, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	s := &stSource{f: f, byName: map[string]safetensors.TensorInfo{}}
	for _, t := range f.Tensors {
		s.ts = append(s.ts, srcTensor{Name: t.Name, DType: t.DType, Shape: t.Shape})
		s.byName[t.Name] = t
	}
	return s, nil
}

type stSource struct {
	f      *safetensors.File
	ts     []srcTensor
	byName map[string]safetensors.TensorInfo
}

func (s *stSource) Tensors() []srcTensor                 { return s.ts }
func (s *stSource) Metadata() map[string]string          { return s.f.Metadata }
func (s *stSource) Size() int64                          { return s.f.FileSize }
func (s *stSource) Close() error                         { return s.f.Close() }
func (s *stSource) Skipped() []string                    { return nil }
func (s *stSource) info(n string) safetensors.TensorInfo { return s.byName[n] }
func (s *stSource) Read(t srcTensor) ([]byte, error) {
	ti, ok := s.byName[t.Name]
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", s.f.Path, t.Name)
	}
	b := s.f.Bytes(ti)
	if b == nil {
		return nil, fmt.Errorf("%s: tensor %q lies outside the data section", s.f.Path, t.Name)
	}
	return b, nil
}

type ptSource struct {
	c    *pt.Checkpoint
	ts   []srcTensor
	size int64
}

func (s *ptSource) Tensors() []srcTensor        { return s.ts }
func (s *ptSource) Metadata() map[string]string { return nil }
func (s *ptSource) Size() int64                 { return s.size }
func (s *ptSource) Close() error                { return s.c.Close() }
func (s *ptSource) Skipped() []string           { return s.c.Skipped }
func (s *ptSource) Read(t srcTensor) ([]byte, error) {
	for _, x := range s.c.Tensors {
		if x.Name == t.Name {
			return s.c.Read(x)
		}
	}
	return nil, fmt.Errorf("%s: no tensor %q", s.c.Path, t.Name)
}

// decodeF32 reads a float tensor as float32.
func decodeF32(s source, t srcTensor) ([]float32, error) {
	if !t.DType.CanDecode() || !t.DType.IsFloat() {
		return nil, fmt.Errorf("tensor %q: %v is not a float dtype", t.Name, t.DType)
	}
	b, err := s.Read(t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.numel())
	if err := dtype.Decode(t.DType, b, out); err != nil {
		return nil, fmt.Errorf("tensor %q: %v", t.Name, err)
	}
	return out, nil
}
