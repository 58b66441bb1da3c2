package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Limits of the strict reader. They are far above what real files use
// (ggml itself allows 4 dimensions and 63-byte names) and only bound the
// work a malformed file can cause.
const (
	MaxKeyLen  = 1 << 16
	MaxNameLen = 1024 // stable-diffusion.cpp writes long prefixed names
	MaxDims    = 8    // Wan and HunyuanVideo files hold 5-D tensors
	// DefaultAlignment is the data alignment when general.alignment is absent.
	DefaultAlignment = 32
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Header is the parsed header of a GGUF file.
type Header struct {
	Version    uint32
	KV         []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset int64 // absolute offset of the data section
	FileSize   int64

	kvIndex     map[string]int
	tensorIndex map[string]int
}

// Get returns the metadata value of key.
func (h *Header) Get(key string) (any, bool) {
	i, ok := h.kvIndex[key]
	if !ok {
		return nil, false
	}
	return h.KV[i].Value, true
}

// GetString returns key's value when it is a STRING.
func (h *Header) GetString(key string) (string, bool) {
	v, ok := h.Get(key)
	s, isStr := v.(string)
	return s, ok && isStr
}

// GetInt returns key's value when it is an integer.
func (h *Header) GetInt(key string) (int64, bool) {
	v, ok := h.Get(key)
	if !ok {
		return 0, false
	}
	return asInt64(v)
}

// Lookup returns the tensor named name.
func (h *Header) Lookup(name string) (TensorInfo, bool) {
	i, ok := h.tensorIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return h.Tensors[i], true
}

// OrigShapeKey is the metadata key prefix ComfyUI-GGUF uses for the
// PyTorch shape of tensors stored reshaped (an ARRAY of INT32).
const OrigShapeKey = "comfy.gguf.orig_shape."

// ModelShape returns the PyTorch shape tensor t loads as: its
// comfy.gguf.orig_shape entry when there is one (checked: ARRAY of INT32,
// positive, same element count), else the reverse of its dims.
func (h *Header) ModelShape(t TensorInfo) ([]int64, error) {
	v, ok := h.Get(OrigShapeKey + t.Name)
	if !ok {
		return t.Shape(), nil
	}
	a, isArr := v.([]int32)
	if !isArr {
		return nil, fmt.Errorf("%s%s: expected ARRAY of INT32, got %s", OrigShapeKey, t.Name, TypeName(v))
	}
	s := make([]int64, len(a))
	n := int64(1)
	for i, d := range a {
		if d < 0 {
			return nil, fmt.Errorf("%s%s: negative dimension %d", OrigShapeKey, t.Name, d)
		}
		s[i] = int64(d)
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return nil, fmt.Errorf("%s%s: shape %v overflows", OrigShapeKey, t.Name, a)
		}
		n = int64(lo)
	}
	if n != t.NumElements() {
		return nil, fmt.Errorf("%s%s: shape %v has %d elements, the tensor %d", OrigShapeKey, t.Name, a, n, t.NumElements())
	}
	return s, nil
}

type parser struct {
	b   []byte
	pos int
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: "+format, append([]any{p.pos}, args...)...)
}

func (p *parser) need(n uint64, what string) error {
	if n > uint64(len(p.b)-p.pos) {
		return p.errf("%s needs %d bytes, only %d left", what, n, len(p.b)-p.pos)
	}
	return nil
}

func (p *parser) u8(what string) (uint8, error) {
	if err := p.need(1, what); err != nil {
		return 0, err
	}
	v := p.b[p.pos]
	p.pos++
	return v, nil
}

func (p *parser) u16(what string) (uint16, error) {
	if err := p.need(2, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(p.b[p.pos:])
	p.pos += 2
	return v, nil
}

func (p *parser) u32(what string) (uint32, error) {
	if err := p.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(p.b[p.pos:])
	p.pos += 4
	return v, nil
}

func (p *parser) u64(what string) (uint64, error) {
	if err := p.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(p.b[p.pos:])
	p.pos += 8
	return v, nil
}

func (p *parser) str(what string, maxLen uint64) (string, error) {
	n, err := p.u64(what + " length")
	if err != nil {
		return "", err
	}
	if maxLen > 0 && n > maxLen {
		return "", p.errf("%s of %d bytes exceeds the limit of %d", what, n, maxLen)
	}
	if err := p.need(n, what); err != nil {
		return "", err
	}
	s := string(p.b[p.pos : p.pos+int(n)])
	p.pos += int(n)
	return s, nil
}

func (p *parser) scalar(t ValueType, what string) (any, error) {
	switch t {
	case TypeUint8:
		return p.u8(what)
	case TypeInt8:
		v, err := p.u8(what)
		return int8(v), err
	case TypeUint16:
		return p.u16(what)
	case TypeInt16:
		v, err := p.u16(what)
		return int16(v), err
	case TypeUint32:
		return p.u32(what)
	case TypeInt32:
		v, err := p.u32(what)
		return int32(v), err
	case TypeFloat32:
		v, err := p.u32(what)
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := p.u8(what)
		if err == nil && v > 1 {
			return nil, p.errf("%s: BOOL byte %d is neither 0 nor 1", what, v)
		}
		return v == 1, err
	case TypeString:
		return p.str(what, 0)
	case TypeUint64:
		return p.u64(what)
	case TypeInt64:
		v, err := p.u64(what)
		return int64(v), err
	case TypeFloat64:
		v, err := p.u64(what)
		return math.Float64frombits(v), err
	}
	return nil, p.errf("%s: unknown value type %d", what, uint32(t))
}

func readArray[T any](p *parser, n uint64, t ValueType, what string) (any, error) {
	out := make([]T, n)
	for i := range out {
		v, err := p.scalar(t, what)
		if err != nil {
			return nil, err
		}
		out[i] = v.(T)
	}
	return out, nil
}

func (p *parser) array(what string) (any, error) {
	et, err := p.u32(what + " element type")
	if err != nil {
		return nil, err
	}
	n, err := p.u64(what + " element count")
	if err != nil {
		return nil, err
	}
	t := ValueType(et)
	sz := t.size()
	switch {
	case sz < 0:
		return nil, p.errf("%s: unknown array element type %d", what, et)
	case t == TypeArray:
		return nil, p.errf("%s: arrays of arrays are not supported", what)
	case t == TypeString:
		sz = 8 // each string has at least its length
	}
	if n > uint64(len(p.b)-p.pos)/uint64(sz) {
		return nil, p.errf("%s: %d elements of %v cannot fit in the %d bytes left", what, n, t, len(p.b)-p.pos)
	}
	switch t {
	case TypeUint8:
		return readArray[uint8](p, n, t, what)
	case TypeInt8:
		return readArray[int8](p, n, t, what)
	case TypeUint16:
		return readArray[uint16](p, n, t, what)
	case TypeInt16:
		return readArray[int16](p, n, t, what)
	case TypeUint32:
		return readArray[uint32](p, n, t, what)
	case TypeInt32:
		return readArray[int32](p, n, t, what)
	case TypeFloat32:
		return readArray[float32](p, n, t, what)
	case TypeBool:
		return readArray[bool](p, n, t, what)
	case TypeString:
		return readArray[string](p, n, t, what)
	case TypeUint64:
		return readArray[uint64](p, n, t, what)
	case TypeInt64:
		return readArray[int64](p, n, t, what)
	default:
		return readArray[float64](p, n, t, what)
	}
}

// ParseHeader parses and validates the header of a GGUF file whose first
// len(b) bytes are b (normally the whole file; fileSize is its size). Every
// count, length, dimension, type, offset and the alignment are checked
// before use; tensor data must lie inside the file, aligned and without
// overlap.
func ParseHeader(b []byte, fileSize int64) (*Header, error) {
	p := &parser{b: b}
	if len(b) < 4 || string(b[:4]) != Magic {
		if len(b) < 4 {
			return nil, fmt.Errorf("not a GGUF file (%d bytes)", len(b))
		}
		return nil, fmt.Errorf("not a GGUF file (magic %q)", b[:4])
	}
	p.pos = 4
	version, err := p.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 1:
		return nil, fmt.Errorf("GGUF version 1 is not supported (only 2 and 3)")
	case version != 2 && version != 3:
		if bits.ReverseBytes32(version) <= 3 {
			return nil, fmt.Errorf("big-endian GGUF files are not supported")
		}
		return nil, fmt.Errorf("unsupported GGUF version %d", version)
	}
	nTensors, err := p.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := p.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Minimal encodings: a KV is 8+1+4+1 bytes, a tensor info 8+1+4+8+4+8.
	if nKV > uint64(len(b)-p.pos)/14 {
		return nil, fmt.Errorf("metadata count %d cannot fit in a file of %d bytes", nKV, fileSize)
	}
	if nTensors > uint64(len(b)-p.pos)/33 {
		return nil, fmt.Errorf("tensor count %d cannot fit in a file of %d bytes", nTensors, fileSize)
	}
	h := &Header{Version: version, FileSize: fileSize, Alignment: DefaultAlignment,
		kvIndex: make(map[string]int, nKV), tensorIndex: make(map[string]int, nTensors)}
	h.KV = make([]KV, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		key, err := p.str(fmt.Sprintf("metadata key %d", i), MaxKeyLen)
		if err != nil {
			return nil, err
		}
		switch {
		case key == "":
			return nil, p.errf("metadata key %d is empty", i)
		case !utf8.ValidString(key):
			return nil, p.errf("metadata key %d %q is not valid UTF-8", i, key)
		}
		if _, dup := h.kvIndex[key]; dup {
			return nil, p.errf("duplicate metadata key %q", key)
		}
		vt, err := p.u32(fmt.Sprintf("metadata %q type", key))
		if err != nil {
			return nil, err
		}
		var v any
		if ValueType(vt) == TypeArray {
			v, err = p.array(fmt.Sprintf("metadata %q", key))
		} else {
			v, err = p.scalar(ValueType(vt), fmt.Sprintf("metadata %q", key))
		}
		if err != nil {
			return nil, err
		}
		if key == "general.alignment" {
			a, ok := v.(uint32)
			if !ok {
				return nil, fmt.Errorf("general.alignment is %s, must be UINT32", TypeName(v))
			}
			if a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("general.alignment %d is not a power of two", a)
			}
			h.Alignment = uint64(a)
		}
		h.kvIndex[key] = len(h.KV)
		h.KV = append(h.KV, KV{Key: key, Value: v})
	}
	h.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		name, err := p.str(fmt.Sprintf("tensor %d name", i), MaxNameLen)
		if err != nil {
			return nil, err
		}
		switch {
		case name == "":
			return nil, p.errf("tensor %d has an empty name", i)
		case !utf8.ValidString(name):
			return nil, p.errf("tensor %d name %q is not valid UTF-8", i, name)
		}
		if _, dup := h.tensorIndex[name]; dup {
			return nil, p.errf("duplicate tensor name %q", name)
		}
		nd, err := p.u32(fmt.Sprintf("tensor %q dimension count", name))
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > MaxDims {
			return nil, p.errf("tensor %q has %d dimensions (1 to %d allowed)", name, nd, MaxDims)
		}
		ti := TensorInfo{Name: name, Dims: make([]uint64, nd)}
		n := uint64(1)
		for j := range ti.Dims {
			d, err := p.u64(fmt.Sprintf("tensor %q dimension %d", name, j))
			if err != nil {
				return nil, err
			}
			if d > math.MaxInt64 {
				return nil, p.errf("tensor %q dimension %d is %d", name, j, d)
			}
			hi, lo := bits.Mul64(n, d)
			if hi != 0 || lo > math.MaxInt64 {
				return nil, p.errf("tensor %q: element count overflows", name)
			}
			ti.Dims[j], n = d, lo
		}
		tt, err := p.u32(fmt.Sprintf("tensor %q type", name))
		if err != nil {
			return nil, err
		}
		ti.Type = Type(tt)
		if !ti.Type.Known() {
			return nil, p.errf("tensor %q has unknown type %d", name, tt)
		}
		if bs := uint64(ti.Type.BlockSize()); ti.Dims[0]%bs != 0 {
			return nil, p.errf("tensor %q: row of %d elements is not a multiple of the %v block size %d", name, ti.Dims[0], ti.Type, bs)
		}
		if ti.Size, err = ti.Type.RowSize(int64(n)); err != nil {
			return nil, p.errf("tensor %q: %v", name, err)
		}
		if ti.Offset, err = p.u64(fmt.Sprintf("tensor %q offset", name)); err != nil {
			return nil, err
		}
		if ti.Offset%h.Alignment != 0 {
			return nil, p.errf("tensor %q: data offset %d is not a multiple of the alignment %d", name, ti.Offset, h.Alignment)
		}
		h.tensorIndex[name] = len(h.Tensors)
		h.Tensors = append(h.Tensors, ti)
	}
	// The data section starts at the next multiple of the alignment.
	off := uint64(p.pos)
	if r := off % h.Alignment; r != 0 {
		off += h.Alignment - r
	}
	if off > uint64(fileSize) {
		if len(h.Tensors) > 0 {
			return nil, fmt.Errorf("data section at %d starts beyond the end of the %d-byte file", off, fileSize)
		}
		off = uint64(fileSize)
	}
	h.DataOffset = int64(off)
	dataLen := uint64(fileSize) - off
	idx := make([]int, len(h.Tensors))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return h.Tensors[idx[a]].Offset < h.Tensors[idx[b]].Offset })
	var end uint64
	var prev string
	for k, i := range idx {
		t := h.Tensors[i]
		if t.Offset > dataLen || uint64(t.Size) > dataLen-t.Offset {
			return nil, fmt.Errorf("tensor %q: data [%d, +%d) extends beyond the end of the file (data section of %d bytes)", t.Name, t.Offset, t.Size, dataLen)
		}
		if k > 0 && t.Offset < end && t.Size > 0 {
			return nil, fmt.Errorf("tensor %q: data at %d overlaps tensor %q (ends at %d)", t.Name, t.Offset, prev, end)
		}
		if e := t.Offset + uint64(t.Size); e > end {
			end, prev = e, t.Name
		}
	}
	return h, nil
}

// File is an open GGUF file whose contents are memory-mapped read-only.
type File struct {
	Path string
	*Header

	f       *os.File
	mapping []byte
}

// Open maps the file at path, parses and validates its header. Errors
// are *Error, one line, naming the file.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &Error{Path: path, Msg: "not a regular file"}
	}
	size := st.Size()
	if size < 24 {
		f.Close()
		return nil, &Error{Path: path, Msg: fmt.Sprintf("not a GGUF file (%d bytes)", size)}
	}
	if size > math.MaxInt {
		f.Close()
		return nil, &Error{Path: path, Msg: "file too large to map on this platform"}
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, &Error{Path: path, Msg: "mmap: " + err.Error()}
	}
	h, err := ParseHeader(m, size)
	if err == nil {
		if st2, serr := f.Stat(); serr != nil || st2.Size() != size {
			err = fmt.Errorf("file changed size while being opened")
		}
	}
	if err != nil {
		_ = unix.Munmap(m)
		f.Close()
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	return &File{Path: path, Header: h, f: f, mapping: m}, nil
}

// OSFile returns the open file, for in-kernel copies of tensor data. It
// must not be closed by the caller.
func (f *File) OSFile() *os.File { return f.f }

// AbsOffset returns the absolute file offset of tensor t's data.
func (f *File) AbsOffset(t TensorInfo) int64 { return f.DataOffset + int64(t.Offset) }

// Bytes returns tensor t's raw data as a view into the mapping (nil after
// Close).
func (f *File) Bytes(t TensorInfo) []byte {
	if f.mapping == nil {
		return nil
	}
	s := f.AbsOffset(t)
	return f.mapping[s : s+t.Size : s+t.Size]
}

// Float32 dequantizes tensor t, reusing dst when large enough.
func (f *File) Float32(t TensorInfo, dst []float32) ([]float32, error) {
	if !t.Type.CanDequantize() {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: cannot dequantize type %v", t.Name, t.Type)}
	}
	n := t.NumElements()
	if n > math.MaxInt32*4 {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: %d elements is too many", t.Name, n)}
	}
	b := f.Bytes(t)
	if b == nil {
		return nil, &Error{Path: f.Path, Msg: "file is closed"}
	}
	if int64(cap(dst)) >= n {
		dst = dst[:n]
	} else {
		dst = make([]float32, n)
	}
	if err := Dequantize(t.Type, b, dst); err != nil {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: %v", t.Name, err)}
	}
	return dst, nil
}

// Advise tells the kernel the access pattern (best effort).
func (f *File) Advise(sequential bool) {
	if f.mapping == nil {
		return
	}
	adv := unix.MADV_RANDOM
	if sequential {
		adv = unix.MADV_SEQUENTIAL
	}
	_ = unix.Madvise(f.mapping, adv)
}

// Release drops tensor t's pages from the process's resident set (they
// stay in the page cache). Best effort.
func (f *File) Release(t TensorInfo) {
	if f.mapping == nil || t.Size == 0 {
		return
	}
	page := int64(os.Getpagesize())
	start := (f.AbsOffset(t) + page - 1) / page * page
	end := (f.AbsOffset(t) + t.Size) / page * page
	if end > start {
		_ = unix.Madvise(f.mapping[start:end], unix.MADV_DONTNEED)
	}
}

// Close unmaps and closes the file.
func (f *File) Close() error {
	m := f.mapping
	f.mapping = nil
	var err error
	if m != nil {
		err = unix.Munmap(m)
	}
	if f.f != nil {
		if cerr := f.f.Close(); err == nil {
			err = cerr
		}
		f.f = nil
	}
	return err
}
