// Package pttest writes small PyTorch-format checkpoints (a zip archive
// with a protocol-2 pickle of a state dict, as torch.save writes it) for
// tests of the pickle-free import, without Python or torch.
package pttest

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
)

// Tensor is one state-dict entry: a contiguous tensor of a torch storage
// class ("HalfStorage", "FloatStorage", "BFloat16Storage", ...) holding
// Data (little-endian).
type Tensor struct {
	Name    string
	Storage string
	Shape   []int64
	Data    []byte
}

// Extra is a non-tensor entry (e.g. "global_step": 5).
type Extra struct {
	Name  string
	Value int64
}

// WriteStateDict writes {"state_dict": {name: tensor...}, extras...} to path.
// Each tensor gets its own storage; strides are contiguous.
func WriteStateDict(path string, tensors []Tensor, extras []Extra) error {
	var p bytes.Buffer
	op := func(b ...byte) { p.Write(b) }
	str := func(s string) {
		op('X')
		binary.Write(&p, binary.LittleEndian, uint32(len(s)))
		p.WriteString(s)
	}
	integer := func(v int64) {
		if v < 0 || v >= 1<<31 {
			op(0x8a, 8)
			binary.Write(&p, binary.LittleEndian, v)
			return
		}
		op('J')
		binary.Write(&p, binary.LittleEndian, int32(v))
	}
	tuple := func(vs []int64) {
		op('(')
		for _, v := range vs {
			integer(v)
		}
		op('t')
	}
	global := func(mod, name string) { p.WriteString("c" + mod + "\n" + name + "\n") }
	op(0x80, 2) // PROTO 2
	op('}')     // EMPTY_DICT (top level)
	op('(')     // MARK
	str("state_dict")
	op('}', '(')
	for i, t := range tensors {
		numel := int64(1)
		for _, d := range t.Shape {
			numel *= d
		}
		stride := make([]int64, len(t.Shape))
		acc := int64(1)
		for j := len(t.Shape) - 1; j >= 0; j-- {
			stride[j] = acc
			acc *= t.Shape[j]
		}
		str(t.Name)
		global("torch._utils", "_rebuild_tensor_v2")
		op('(')
		op('(')
		str("storage")
		global("torch", t.Storage)
		str(strconv.Itoa(i))
		str("cpu")
		integer(numel)
		op('t', 'Q') // TUPLE, BINPERSID
		integer(0)
		tuple(t.Shape)
		tuple(stride)
		op(0x89) // NEWFALSE
		global("collections", "OrderedDict")
		op(')', 'R') // EMPTY_TUPLE, REDUCE
		op('t', 'R')
	}
	op('u') // SETITEMS (inner)
	for _, e := range extras {
		str(e.Name)
		integer(e.Value)
	}
	op('u', '.') // SETITEMS (outer), STOP
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	add := func(name string, b []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	if err := add("archive/data.pkl", p.Bytes()); err != nil {
		return err
	}
	for i, t := range tensors {
		if err := add(fmt.Sprintf("archive/data/%d", i), t.Data); err != nil {
			return err
		}
	}
	if err := add("archive/version", []byte("3\n")); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, z.Bytes(), 0o644)
}
