// Package pt reads PyTorch checkpoints (.ckpt, .pt, .pth, .bin) without
// executing anything, for conversion to safetensors.
//
// Both the zip format written by torch.save since PyTorch 1.6 and the older
// "legacy" stream format are supported. The pickle inside is first
// pre-scanned opcode by opcode (sizes, stack structure, allow-listed globals,
// memory estimate) and only then handed to gopickle's unpickler, whose
// class lookups resolve to inert Go values. Tensor data is never touched
// while unpickling: Open records for each tensor its storage, offset, shape
// and strides, and Read fetches the bytes on demand. See docs/pickle.md.
package pt

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"github.com/loratool/loratool/safetensors"
	"io"
	"math"
	"math/bits"
	"os"
	"strings"
	"sync"

	"github.com/nlpodyssey/gopickle/types"
)

// Tensor is one tensor of a checkpoint, described without its data.
type Tensor struct {
	// Name is the state-dict key. A top-level "state_dict" wrapper is
	// unwrapped; nested dicts inside the state dict are joined with ".".
	Name string
	// DType is the safetensors dtype name: F32, F16, BF16, F64, I64, I32,
	// I16, I8, U8, BOOL, F8_E4M3 or F8_E5M2.
	DType string
	// Shape is the tensor's size, outermost dimension first.
	Shape []int64

	storage string  // storage key
	offset  int64   // storage offset in elements
	stride  []int64 // strides in elements
	elem    int64   // element size in bytes
}

// NumBytes returns the size of the tensor's contiguous data in bytes, or -1
// if it does not fit in an int64.
func (t Tensor) NumBytes() int64 {
	n, ok := numel(t.Shape)
	if !ok {
		return -1
	}
	hi, lo := bits.Mul64(uint64(n), uint64(t.elem))
	if hi != 0 || lo > math.MaxInt64 {
		return -1
	}
	return int64(lo)
}

// Checkpoint is an open PyTorch checkpoint.
type Checkpoint struct {
	// Path is the file name given to Open.
	Path string
	// Tensors lists the tensors in pickle order.
	Tensors []Tensor
	// Skipped lists the non-tensor entries, each as "name: reason".
	Skipped []string

	f         *os.File
	fileSize  int64
	storages  map[string]*storage
	bigEndian bool
}

// storage is where one storage's bytes live in the file.
type storage struct {
	ref    *storageRef
	zf     *zip.File // set for compressed zip entries
	off    int64     // file offset of the raw bytes (uncompressed entries)
	nbytes int64     // bytes available for this storage
	views  int       // tensors reading this storage

	mu       sync.Mutex
	inflated *os.File // a shared compressed storage, inflated once (unlinked temp file)
}

// maxDeflateRatio is the largest expansion deflate can achieve; a zip entry
// claiming more is refused before anything is allocated.
const maxDeflateRatio = 1032

func (c *Checkpoint) errf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", c.Path, fmt.Sprintf(format, args...))
}

// Open reads the structure of the checkpoint at path: the pickle is
// decoded, tensor data is not read.
func Open(path string) (*Checkpoint, error) {
	c := &Checkpoint{Path: path}
	f, st, err := safetensors.OpenRegular(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, c.errf("%v", oneLine(err))
	}
	c.f, c.fileSize = f, st.Size()
	if err := c.open(); err != nil {
		f.Close()
		c.f = nil
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) open() error {
	var head [512]byte
	n, _ := c.f.ReadAt(head[:], 0)
	h := head[:n]
	switch {
	case n == 0:
		return c.errf("empty file")
	case bytes.HasPrefix(h, []byte("PK\x03\x04")) || bytes.HasPrefix(h, []byte("PK\x05\x06")):
		return c.openZip()
	case n >= 262 && string(h[257:262]) == "ustar":
		return c.errf("tar-based PyTorch checkpoint (PyTorch < 0.4) is not supported; re-save it with a recent torch.save")
	case n >= 9 && h[8] == '{':
		return c.errf("this looks like a safetensors file, not a PyTorch checkpoint")
	case h[0] == opProto || h[0] == opLong || h[0] == opLong1:
		return c.openLegacy()
	}
	return c.errf("not a PyTorch checkpoint (neither a zip archive nor a legacy pickle stream)")
}

func (c *Checkpoint) openZip() error {
	zr, err := zip.NewReader(c.f, c.fileSize)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return c.errf("corrupt or truncated zip archive: %v", oneLine(err))
	}
	// Locate <prefix>/data.pkl; torch uses the directory of the first record.
	first := ""
	if len(zr.File) > 0 {
		first, _, _ = strings.Cut(zr.File[0].Name, "/")
	}
	entries := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, zf := range zr.File {
		if _, dup := entries[zf.Name]; dup {
			return c.errf("zip archive holds %s twice", printable(zf.Name))
		}
		entries[zf.Name] = zf
		dir, rest, ok := strings.Cut(zf.Name, "/")
		if ok && rest == "data.pkl" && (pkl == nil || dir == first) {
			pkl = zf
		}
	}
	if pkl == nil {
		return c.errf("zip archive has no <name>/data.pkl: not a PyTorch checkpoint")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if entries[prefix+"constants.pkl"] != nil || hasPrefix(entries, prefix+"code/") {
		return c.errf("TorchScript archive (has code/ or constants.pkl); save the model's state_dict with torch.save instead")
	}
	if bo := entries[prefix+"byteorder"]; bo != nil {
		b, err := readSmall(bo, 16)
		if err != nil {
			return c.errf("%sbyteorder: %v", prefix, oneLine(err))
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			c.bigEndian = true
		default:
			return c.errf("%sbyteorder: unknown byte order %s", prefix, printable(string(b)))
		}
	}

	if pkl.UncompressedSize64 > maxPickleBytes {
		return c.errf("%s is %d bytes, larger than the %d MiB limit", pkl.Name, pkl.UncompressedSize64, maxPickleBytes>>20)
	}
	raw, err := readSmall(pkl, maxPickleBytes)
	if err != nil {
		return c.errf("%s: %v", pkl.Name, oneLine(err))
	}
	ld := &loader{storages: map[string]*storageRef{}}
	root, err := c.decode(bytes.NewReader(raw), int64(len(raw)), ld)
	if err != nil {
		return err
	}

	c.storages = make(map[string]*storage, len(ld.storages))
	for key, ref := range ld.storages {
		name := prefix + "data/" + key
		zf := entries[name]
		if zf == nil {
			return c.errf("storage %s is missing from the archive (%s)", printable(key), printable(name))
		}
		s := &storage{ref: ref}
		switch zf.Method {
		case zip.Store:
			off, err := zf.DataOffset()
			if err != nil {
				return c.errf("%s: %v", printable(name), oneLine(err))
			}
			size := zf.UncompressedSize64
			if zf.CompressedSize64 != size || size > uint64(c.fileSize) || off < 0 || off > c.fileSize-int64(size) {
				return c.errf("%s: entry of %d bytes runs past the end of the file (truncated archive?)", printable(name), size)
			}
			s.off, s.nbytes = off, int64(size)
		case zip.Deflate:
			if zf.CompressedSize64 > uint64(c.fileSize) ||
				zf.UncompressedSize64/maxDeflateRatio > zf.CompressedSize64 ||
				zf.UncompressedSize64 > math.MaxInt64 {
				return c.errf("%s: implausible compressed entry sizes", printable(name))
			}
			s.zf, s.nbytes = zf, int64(zf.UncompressedSize64)
		default:
			return c.errf("%s: unsupported zip compression method %d", printable(name), zf.Method)
		}
		c.storages[key] = s
	}
	return c.collect(root)
}

func hasPrefix(m map[string]*zip.File, p string) bool {
	for k := range m {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// readSmall reads a whole zip entry of at most limit bytes.
func readSmall(zf *zip.File, limit int64) ([]byte, error) {
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("entry larger than %d bytes", limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("entry larger than %d bytes", limit)
	}
	return b, nil
}

// decode pre-scans and unpickles one pickle stream read from r.
func (c *Checkpoint) decode(r io.ByteReader, limit int64, ld *loader) (any, error) {
	if limit > maxPickleBytes {
		limit = maxPickleBytes
	}
	data, err := scanPickle(r, limit, checkGlobal)
	if err != nil {
		return nil, c.pickleErr(err)
	}
	v, err := ld.unpickle(data)
	if err != nil {
		return nil, c.pickleErr(err)
	}
	return v, nil
}

func (c *Checkpoint) pickleErr(err error) error {
	var re *refusalError
	if errors.As(err, &re) {
		return c.errf("%s", re.Error())
	}
	return c.errf("pickle: %s", oneLine(err))
}

// oneLine flattens an error message to a single line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// collect turns the unpickled root object into Tensors and Skipped and
// validates every tensor against its storage.
func (c *Checkpoint) collect(root any) error {
	w := &walker{c: c, seen: map[string]bool{}, visited: map[any]bool{}, holds: map[any]bool{}, budget: walkBudget}
	switch r := root.(type) {
	case *tensorRef:
		w.tensor("tensor", r)
	default:
		entries, ok := dictEntries(root)
		if !ok {
			return c.errf("top-level object is a %s, not a dict of tensors", describe(root))
		}
		var inner any
		for _, e := range entries {
			if k, _ := e.Key.(string); k == "state_dict" {
				if _, ok := dictEntries(e.Value); ok {
					inner = e.Value
				}
			}
		}
		if inner == nil {
			w.dict("", root, 0)
		} else {
			for _, e := range entries {
				if w.err != nil {
					break
				}
				if w.budget--; w.budget < 0 {
					w.err = c.errf("pickle object graph too large (more than %d entries to flatten)", walkBudget)
					break
				}
				k, ok := e.Key.(string)
				switch {
				case ok && k == "state_dict":
					w.dict("", inner, 0)
				case !ok:
					w.skip(describe(e.Key)+" key", "non-string key")
				default:
					if t, isT := e.Value.(*tensorRef); isT {
						w.tensor(k, t)
					} else {
						w.skip(k, describe(e.Value)+" (not a tensor)")
					}
				}
			}
		}
	}
	if w.err != nil {
		return w.err
	}
	return nil
}

type walker struct {
	c       *Checkpoint
	seen    map[string]bool
	visited map[any]bool
	holds   map[any]bool
	budget  int // entries the walk may still visit
	err     error
}

// walkBudget bounds the entries visited while flattening, so a pickle that
// shares sub-dicts many times over cannot blow up the walk.
const walkBudget = 4 * maxTensors

func (w *walker) skip(name, reason string) {
	if name == "" {
		name = "(empty name)"
	}
	w.c.Skipped = append(w.c.Skipped, printable(name)+": "+reason)
}

func (w *walker) dict(prefix string, d any, depth int) {
	if depth > 32 {
		w.skip(prefix, "nested too deeply")
		return
	}
	if w.visited[d] {
		w.skip(strings.TrimSuffix(prefix, "."), "dict already listed under another name (shared or recursive reference)")
		return
	}
	w.visited[d] = true
	entries, _ := dictEntries(d)
	for _, e := range entries {
		if w.err != nil {
			return
		}
		if w.budget--; w.budget < 0 {
			w.err = w.c.errf("pickle object graph too large (more than %d entries to flatten)", walkBudget)
			return
		}
		k, ok := e.Key.(string)
		if !ok {
			w.skip(prefix+describe(e.Key)+" key", "non-string key")
			continue
		}
		name := prefix + k
		switch v := e.Value.(type) {
		case *tensorRef:
			w.tensor(name, v)
		default:
			if sub, isDict := dictEntries(v); isDict {
				if w.hasTensor(v) {
					w.dict(name+".", v, depth+1)
				} else {
					w.skip(name, fmt.Sprintf("dict of %d entries (no tensors)", len(sub)))
				}
			} else {
				w.skip(name, describe(v)+" (not a tensor)")
			}
		}
	}
}

func (w *walker) tensor(name string, t *tensorRef) {
	if w.err != nil {
		return
	}
	if w.seen[name] {
		w.skip(name, "duplicate tensor name")
		return
	}
	if name == "" {
		w.skip(name, "tensor with an empty name")
		return
	}
	w.seen[name] = true
	ten := Tensor{Name: name, DType: t.st.dtype, Shape: t.shape, storage: t.st.key,
		offset: t.offset, stride: t.stride, elem: t.st.size}
	s := w.c.storages[t.st.key]
	if _, err := w.c.plan(ten, s); err != nil {
		w.err = err
		return
	}
	w.c.Tensors = append(w.c.Tensors, ten)
	if s != nil {
		s.views++
	}
}

// hasTensor reports whether a dict holds a tensor, directly or in nested
// dicts. Results are memoised per dict, so shared sub-dicts and reference
// cycles cost one visit each.
func (w *walker) hasTensor(d any) bool {
	if v, ok := w.holds[d]; ok {
		return v
	}
	w.holds[d] = false // cycle guard
	entries, _ := dictEntries(d)
	found := false
	for _, e := range entries {
		if _, ok := e.Value.(*tensorRef); ok {
			found = true
			break
		}
		if _, ok := dictEntries(e.Value); ok && w.hasTensor(e.Value) {
			found = true
			break
		}
	}
	w.holds[d] = found
	return found
}

// dictEntries returns the entries of a dict or OrderedDict in order.
func dictEntries(v any) ([]types.DictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		return []types.DictEntry(*d), true
	case *types.OrderedDict:
		out := make([]types.DictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe, ok := e.Value.(*types.OrderedDictEntry)
			if ok {
				out = append(out, types.DictEntry{Key: oe.Key, Value: oe.Value})
			}
		}
		return out, true
	}
	return nil, false
}

// layout is the validated geometry of one tensor inside its storage.
type layout struct {
	numel    int64 // elements in the tensor
	outBytes int64 // bytes of the contiguous result
	lo, hi   int64 // byte range [lo, hi) of the storage the tensor touches
}

func numel(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			return 0, true
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = int64(lo)
	}
	return n, true
}

// plan validates a tensor's offset, shape and strides against the storage
// declared in the pickle and the bytes actually present in the file.
func (c *Checkpoint) plan(t Tensor, s *storage) (layout, error) {
	var l layout
	if s == nil || s.ref.dtype != t.DType || s.ref.size != t.elem || len(t.stride) != len(t.Shape) {
		return l, c.errf("tensor %s: unknown storage or inconsistent description", printable(t.Name))
	}
	n, ok := numel(t.Shape)
	if !ok {
		return l, c.errf("tensor %s: shape %v overflows", printable(t.Name), t.Shape)
	}
	l.numel = n
	if n == 0 {
		return l, nil
	}
	// Highest element index touched: offset + sum((size-1)*stride).
	last := uint64(t.offset)
	for i, d := range t.Shape {
		hi, lo := bits.Mul64(uint64(d-1), uint64(t.stride[i]))
		if hi != 0 || lo > math.MaxInt64 {
			return l, c.errf("tensor %s: strides overflow", printable(t.Name))
		}
		last += lo
		if last > math.MaxInt64 {
			return l, c.errf("tensor %s: strides overflow", printable(t.Name))
		}
	}
	if int64(last) >= s.ref.numel {
		return l, c.errf("tensor %s: offset %d with shape %v and stride %v reaches element %d, beyond its storage %s of %d elements",
			printable(t.Name), t.offset, t.Shape, t.stride, last, printable(s.ref.key), s.ref.numel)
	}
	// Elements are at most 8 bytes and last < numel, so these fit once
	// numel*elem is known to fit the entry.
	if uint64(s.ref.numel) > uint64(s.nbytes)/uint64(t.elem) {
		return l, c.errf("storage %s declares %d elements of %d bytes but the file holds only %d bytes for it",
			printable(s.ref.key), s.ref.numel, t.elem, s.nbytes)
	}
	l.lo = t.offset * t.elem
	l.hi = (int64(last) + 1) * t.elem
	if n > s.nbytes/t.elem {
		return l, c.errf("tensor %s: %d elements from a storage of %d bytes (overlapping or broadcast strides); refusing",
			printable(t.Name), n, s.nbytes)
	}
	l.outBytes = n * t.elem
	return l, nil
}

// bufferSpanLimit is the largest storage span Read loads at once to gather
// a non-contiguous tensor; larger spans are read run by run.
const bufferSpanLimit = 256 << 20

// Read returns the tensor's bytes, contiguous (row-major), little-endian,
// in the tensor's own dtype. Views with a storage offset or non-contiguous
// strides are materialised. Sizes are validated before any allocation.
func (c *Checkpoint) Read(t Tensor) ([]byte, error) {
	if c == nil || c.f == nil {
		return nil, errors.New("pt: Read on a closed checkpoint")
	}
	s := c.storages[t.storage]
	l, err := c.plan(t, s)
	if err != nil {
		return nil, err
	}
	out := make([]byte, l.outBytes)
	if l.numel == 0 {
		return out, nil
	}
	span := l.hi - l.lo
	contiguous := isContiguous(t.Shape, t.stride)

	var src io.ReaderAt
	base := l.lo // byte offset of the span start inside src
	switch {
	case s.zf == nil:
		src = io.NewSectionReader(c.f, s.off, s.nbytes)
	case s.views > 1:
		// a compressed storage shared by several views is inflated once,
		// to an unlinked temporary file (disk, not memory)
		f, err := c.inflateOnce(s)
		if err != nil {
			return nil, c.errf("tensor %s: %v", printable(t.Name), oneLine(err))
		}
		src = f
	case contiguous:
		// the only view: inflate straight into the result
		if err := c.readDeflatedInto(s, l.lo, out); err != nil {
			return nil, c.errf("tensor %s: %v", printable(t.Name), oneLine(err))
		}
		if c.bigEndian && t.elem > 1 {
			swapBytes(out, int(t.elem))
		}
		return out, nil
	default:
		buf := make([]byte, span)
		if err := c.readDeflatedInto(s, l.lo, buf); err != nil {
			return nil, c.errf("tensor %s: %v", printable(t.Name), oneLine(err))
		}
		src, base = bytes.NewReader(buf), 0
	}
	if contiguous {
		if _, err := src.ReadAt(out, base); err != nil {
			return nil, c.errf("tensor %s: reading %d bytes: %v", printable(t.Name), len(out), oneLine(err))
		}
	} else {
		if s.zf == nil && (span <= bufferSpanLimit || span <= 2*l.outBytes) {
			buf := make([]byte, span)
			if _, err := src.ReadAt(buf, base); err != nil {
				return nil, c.errf("tensor %s: reading %d bytes: %v", printable(t.Name), span, oneLine(err))
			}
			src, base = bytes.NewReader(buf), 0
		}
		if err := gather(out, t.Shape, t.stride, t.elem, src, base); err != nil {
			return nil, c.errf("tensor %s: %v", printable(t.Name), oneLine(err))
		}
	}
	if c.bigEndian && t.elem > 1 {
		swapBytes(out, int(t.elem))
	}
	return out, nil
}

// readDeflatedInto decompresses bytes [lo, lo+len(buf)) of a compressed
// storage entry into buf, streaming (nothing else is held in memory).
func (c *Checkpoint) readDeflatedInto(s *storage, lo int64, buf []byte) error {
	rc, err := s.zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, lo); err != nil {
		return err
	}
	_, err = io.ReadFull(rc, buf)
	return err
}

// inflateOnce inflates a shared compressed storage to an unlinked
// temporary file the first time one of its views is read; later views read
// from it (linear time however many views there are, memory bounded by
// the copy buffer).
func (c *Checkpoint) inflateOnce(s *storage) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflated != nil {
		return s.inflated, nil
	}
	f, err := os.CreateTemp("", "loratool-pt-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	rc, err := s.zf.Open()
	if err != nil {
		f.Close()
		return nil, err
	}
	defer rc.Close()
	n, err := io.Copy(f, io.LimitReader(rc, s.nbytes))
	if err == nil && n != s.nbytes {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	s.inflated = f
	return f, nil
}

// isContiguous reports whether strides are row-major for shape (size-1
// dimensions may carry any stride).
func isContiguous(shape, stride []int64) bool {
	want := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] == 1 {
			continue
		}
		if stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

// gather copies a strided tensor into dst in row-major order. src holds the
// storage bytes with element 0 of the tensor (its storage offset) at base.
func gather(dst []byte, shape, stride []int64, elem int64, src io.ReaderAt, base int64) error {
	// The innermost dimensions that are contiguous among themselves form a
	// run copied in one piece.
	k, run := len(shape), int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && stride[i] != run {
			break
		}
		run *= shape[i]
		k = i
	}
	runBytes := run * elem
	idx := make([]int64, k)
	for pos := int64(0); pos < int64(len(dst)); pos += runBytes {
		off := int64(0)
		for i := 0; i < k; i++ {
			off += idx[i] * stride[i]
		}
		if _, err := src.ReadAt(dst[pos:pos+runBytes], base+off*elem); err != nil {
			return fmt.Errorf("reading storage: %v", err)
		}
		for i := k - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return nil
}

func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		e := b[i : i+size]
		for a, z := 0, size-1; a < z; a, z = a+1, z-1 {
			e[a], e[z] = e[z], e[a]
		}
	}
}

// Close releases the file. It is safe to call more than once.
func (c *Checkpoint) Close() error {
	if c == nil || c.f == nil {
		return nil
	}
	for _, s := range c.storages {
		if s.inflated != nil {
			s.inflated.Close()
			s.inflated = nil
		}
	}
	err := c.f.Close()
	c.f = nil
	if err != nil {
		return c.errf("%v", oneLine(err))
	}
	return nil
}
