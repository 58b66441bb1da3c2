package safetensors

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/loratool/loratool/dtype"
)

// TensorSpec describes a tensor to be written.
type TensorSpec struct {
	Name  string
	DType dtype.DType
	Shape []int64
}

// Writer streams a safetensors file to a temporary file next to the
// destination and renames it into place on Commit. Tensors must be written
// in the order returned by Order. A Writer is not safe for concurrent use
// (Abort may be called from another goroutine, e.g. a signal handler).
type Writer struct {
	path, tmp string
	order     []TensorSpec
	sizes     []int64
	fileSize  int64

	f        *os.File
	bw       *bufio.Writer
	next     int
	written  int64
	progress func(int64)
	scratch  []byte
	mode     os.FileMode // permission bits set on Commit; 0 means OutputMode(path)

	mu   sync.Mutex
	done bool // committed or aborted
	err  error
}

const writeBufSize = 4 << 20

// live is the registry of Writers whose temporary file exists, used by
// CleanupOnSignal.
var (
	liveMu sync.Mutex
	live   = map[*Writer]struct{}{}
)

// canonicalOrder sorts specs as the Rust crate does: dtype descending (the
// dtype enum order, i.e. larger alignment first), then name ascending.
func canonicalOrder(specs []TensorSpec) {
	sort.SliceStable(specs, func(i, j int) bool {
		a, b := specs[i], specs[j]
		if a.DType != b.DType {
			return a.DType > b.DType
		}
		return a.Name < b.Name
	})
}

// buildHeader validates specs, orders them canonically and returns the
// ordered specs, their byte sizes and the complete padded header (8-byte
// length prefix included).
func buildHeader(tensors []TensorSpec, metadata map[string]string) ([]TensorSpec, []int64, []byte, error) {
	order := make([]TensorSpec, len(tensors))
	seen := make(map[string]struct{}, len(tensors))
	for i, s := range tensors {
		switch {
		case s.Name == "":
			return nil, nil, nil, fmt.Errorf("tensor %d has an empty name", i)
		case s.Name == metadataKey:
			return nil, nil, nil, fmt.Errorf("%q cannot be used as a tensor name", metadataKey)
		case !utf8.ValidString(s.Name):
			return nil, nil, nil, fmt.Errorf("tensor name %q is not valid UTF-8", s.Name)
		case !s.DType.Valid():
			return nil, nil, nil, fmt.Errorf("tensor %q: invalid dtype %v", s.Name, s.DType)
		}
		if _, dup := seen[s.Name]; dup {
			return nil, nil, nil, fmt.Errorf("duplicate tensor name %q", s.Name)
		}
		seen[s.Name] = struct{}{}
		order[i] = TensorSpec{Name: s.Name, DType: s.DType, Shape: append([]int64{}, s.Shape...)}
	}
	if len(order) > MaxTensors {
		return nil, nil, nil, fmt.Errorf("%d tensors exceed the limit of %d", len(order), MaxTensors)
	}
	canonicalOrder(order)

	var js []byte
	js = append(js, '{')
	if metadata != nil {
		keys := make([]string, 0, len(metadata))
		for k, v := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, nil, fmt.Errorf("metadata %q is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		js = appendJSONString(js, metadataKey)
		js = append(js, ':', '{')
		for i, k := range keys {
			if i > 0 {
				js = append(js, ',')
			}
			js = appendJSONString(js, k)
			js = append(js, ':')
			js = appendJSONString(js, metadata[k])
		}
		js = append(js, '}')
	}
	sizes := make([]int64, len(order))
	var off int64
	for i, s := range order {
		numel, ok := numElements(s.Shape)
		if !ok {
			return nil, nil, nil, fmt.Errorf("tensor %q: invalid shape %v", s.Name, s.Shape)
		}
		size, err := dtype.Size(s.DType, numel)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tensor %q: %v", s.Name, err)
		}
		if off+size < off {
			return nil, nil, nil, fmt.Errorf("tensor %q: total data size overflows", s.Name)
		}
		sizes[i] = size
		if metadata != nil || i > 0 {
			js = append(js, ',')
		}
		js = appendJSONString(js, s.Name)
		js = append(js, `:{"dtype":`...)
		js = appendJSONString(js, s.DType.String())
		js = append(js, `,"shape":[`...)
		for k, d := range s.Shape {
			if k > 0 {
				js = append(js, ',')
			}
			js = strconv.AppendInt(js, d, 10)
		}
		js = append(js, `],"data_offsets":[`...)
		js = strconv.AppendInt(js, off, 10)
		js = append(js, ',')
		off += size
		js = strconv.AppendInt(js, off, 10)
		js = append(js, ']', '}')
		if len(js) > MaxHeaderSize {
			return nil, nil, nil, fmt.Errorf("header exceeds the limit of %d bytes", MaxHeaderSize)
		}
	}
	js = append(js, '}')
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	if len(js) > MaxHeaderSize {
		return nil, nil, nil, fmt.Errorf("header of %d bytes exceeds the limit of %d bytes", len(js), MaxHeaderSize)
	}
	hdr := make([]byte, 8, 8+len(js))
	n := uint64(len(js))
	for i := 0; i < 8; i++ {
		hdr[i] = byte(n >> (8 * i))
	}
	hdr = append(hdr, js...)
	return order, sizes, hdr, nil
}

// appendJSONString appends s as a JSON string, escaping like serde_json
// (quote, backslash and control characters only; UTF-8 is kept as is).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// Create validates the tensor specs (unique, non-empty, valid UTF-8 names;
// valid dtypes; shapes whose byte size is a whole number of bytes), orders
// them canonically (dtype descending in the Rust enum order, then name
// ascending), and writes the header to a temporary file
// "<dir>/.loratool-<pid>-<random>.tmp" next to path (see CreateTemp). The header is deterministic:
// compact JSON, "__metadata__" first with its keys sorted, then the tensors
// in data order, padded with spaces so that 8+N is a multiple of 8.
func Create(path string, tensors []TensorSpec, metadata map[string]string) (*Writer, error) {
	order, sizes, hdr, err := buildHeader(tensors, metadata)
	if err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	total := int64(len(hdr))
	for _, s := range sizes {
		total += s
	}
	dir := filepath.Dir(path)
	// every command creates a missing output folder the same way
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, &Error{Path: path, Msg: "creating the output folder: " + openMsg(err)}
	}
	w := &Writer{path: path, order: order, sizes: sizes, fileSize: total}
	if err := w.openTemp(dir); err != nil {
		return nil, err
	}
	if err := w.write(hdr); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// openTemp creates the temporary file (CreateTemp) in dir and registers
// the writer for CleanupOnSignal.
func (w *Writer) openTemp(dir string) error {
	// Register before the temp file exists so a signal cannot miss it.
	liveMu.Lock()
	f, err := CreateTemp(dir)
	if err == nil {
		w.f, w.tmp = f, f.Name()
		live[w] = struct{}{}
	}
	liveMu.Unlock()
	if err != nil {
		return &Error{Path: w.path, Msg: "creating temporary file: " + openMsg(err)}
	}
	w.bw = bufio.NewWriterSize(f, writeBufSize)
	return nil
}

// Order returns the tensors in the order they must be written (a copy).
func (w *Writer) Order() []TensorSpec {
	out := make([]TensorSpec, len(w.order))
	for i, s := range w.order {
		out[i] = TensorSpec{Name: s.Name, DType: s.DType, Shape: append([]int64{}, s.Shape...)}
	}
	return out
}

// FileSize returns the size the finished file will have, in bytes.
func (w *Writer) FileSize() int64 { return w.fileSize }

// SetProgress installs fn, called after every write with the number of
// bytes written to the file so far (header included). It is called from
// the goroutine that calls Write.
func (w *Writer) SetProgress(fn func(bytesWritten int64)) { w.progress = fn }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) write(b []byte) error {
	if _, err := w.bw.Write(b); err != nil {
		return w.fail(&Error{Path: w.path, Msg: "writing: " + err.Error()})
	}
	w.written += int64(len(b))
	if w.progress != nil {
		w.progress(w.written)
	}
	return nil
}

// check verifies the writer is usable and name is the next tensor.
func (w *Writer) check(name string) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, &Error{Path: w.path, Msg: "writer is already committed or aborted"}
	}
	if w.next >= len(w.order) {
		return 0, &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: all %d tensors are already written", name, len(w.order))}
	}
	if want := w.order[w.next].Name; name != want {
		return 0, &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q written out of order: expected %q", name, want)}
	}
	return w.next, nil
}

// Write writes the raw little-endian bytes of the next tensor, which must
// be named name and be exactly its size.
func (w *Writer) Write(name string, data []byte) error {
	i, err := w.check(name)
	if err != nil {
		return err
	}
	if int64(len(data)) != w.sizes[i] {
		return &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: got %d bytes, shape %v of %v needs %d", name, len(data), w.order[i].Shape, w.order[i].DType, w.sizes[i])}
	}
	if err := w.write(data); err != nil {
		return err
	}
	w.next++
	return nil
}

// WriteFrom writes the next tensor by copying n bytes at offset off of
// src inside the kernel (copy_file_range on Linux, a plain copy elsewhere):
// pass-through tensors of a large checkpoint then cost no user-space copy.
// n must be the tensor's byte size.
func (w *Writer) WriteFrom(name string, src *os.File, off, n int64) error {
	i, err := w.check(name)
	if err != nil {
		return err
	}
	if n != w.sizes[i] {
		return &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: got %d bytes, shape %v of %v needs %d", name, n, w.order[i].Shape, w.order[i].DType, w.sizes[i])}
	}
	if err := w.copyRange("tensor "+name, src, off, n); err != nil {
		return err
	}
	w.next++
	return nil
}

// copyRange copies n bytes at offset off of src to the output inside the
// kernel where possible (what is labelled name in errors).
func (w *Writer) copyRange(name string, src *os.File, off, n int64) error {
	if err := w.bw.Flush(); err != nil {
		return w.fail(&Error{Path: w.path, Msg: "writing: " + err.Error()})
	}
	if _, err := src.Seek(off, io.SeekStart); err != nil {
		return w.fail(&Error{Path: w.path, Msg: "reading " + src.Name() + ": " + err.Error()})
	}
	copied, err := w.f.ReadFrom(&io.LimitedReader{R: src, N: n})
	if err == nil && copied != n {
		err = fmt.Errorf("%s ended after %d of %d bytes", src.Name(), copied, n)
	}
	if err != nil {
		return w.fail(&Error{Path: w.path, Msg: "copying " + name + ": " + err.Error()})
	}
	w.written += n
	if w.progress != nil {
		w.progress(w.written)
	}
	return nil
}

// WriteFloat32 encodes vals to the next tensor's dtype (one of the float
// dtypes accepted by dtype.Encode) and writes them. len(vals) must equal
// the tensor's element count. The returned Stats count NaNs and values
// saturated by FP8 encoding.
func (w *Writer) WriteFloat32(name string, vals []float32) (dtype.Stats, error) {
	var st dtype.Stats
	i, err := w.check(name)
	if err != nil {
		return st, err
	}
	s := w.order[i]
	if !s.DType.IsFloat() {
		return st, &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: cannot encode float32 to %v", name, s.DType)}
	}
	elem := int64(s.DType.BitSize() / 8)
	if int64(len(vals))*elem != w.sizes[i] {
		return st, &Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: got %d values, shape %v needs %d", name, len(vals), s.Shape, w.sizes[i]/elem)}
	}
	const chunk = 1 << 18
	if w.scratch == nil {
		w.scratch = make([]byte, chunk*8)
	}
	for len(vals) > 0 {
		n := min(len(vals), chunk)
		buf := w.scratch[:int64(n)*elem]
		cs, err := dtype.Encode(s.DType, vals[:n], buf)
		if err != nil {
			return st, w.fail(&Error{Path: w.path, Msg: fmt.Sprintf("tensor %q: %v", name, err)})
		}
		st = st.Add(cs)
		if err := w.write(buf); err != nil {
			return st, err
		}
		vals = vals[n:]
	}
	w.next++
	return st, nil
}

// Commit finishes the file: it requires every tensor to have been written,
// flushes, fsyncs and closes the temporary file, renames it over the
// destination and fsyncs the directory. On failure the temporary file is
// removed and the destination is left untouched.
func (w *Writer) Commit() error {
	if w.err == nil && !w.done && w.next < len(w.order) {
		w.fail(&Error{Path: w.path, Msg: fmt.Sprintf("commit before all tensors were written (%d of %d; next is %q)", w.next, len(w.order), w.order[w.next].Name)})
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return err
	}
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return &Error{Path: w.path, Msg: "writer is already committed or aborted"}
	}
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if err == nil {
		mode := w.mode
		if mode == 0 {
			mode = OutputMode(w.path)
		}
		err = w.f.Chmod(mode)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	if err != nil {
		_ = os.Remove(w.tmp)
		w.finish()
		w.mu.Unlock()
		return w.fail(&Error{Path: w.path, Msg: "committing: " + err.Error()})
	}
	w.finish()
	w.mu.Unlock()
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return &Error{Path: w.path, Msg: "syncing the directory: " + err.Error()}
		}
	}
	return nil
}

// finish marks the writer done and unregisters it (w.mu held).
func (w *Writer) finish() {
	w.done = true
	liveMu.Lock()
	delete(live, w)
	liveMu.Unlock()
}

// Abort closes and removes the temporary file, leaving the destination
// untouched. It is safe to call more than once and after Commit (no-op).
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	_ = w.f.Close()
	_ = os.Remove(w.tmp)
	w.finish()
	if w.err == nil {
		w.err = &Error{Path: w.path, Msg: "writer aborted"}
	}
}

// WriteFile writes a complete file: it creates a Writer, calls data for
// every tensor in canonical order and writes the returned bytes, then
// commits. On any error the temporary file is removed and the destination
// is left untouched.
func WriteFile(path string, tensors []TensorSpec, metadata map[string]string, data func(spec TensorSpec) ([]byte, error)) error {
	w, err := Create(path, tensors, metadata)
	if err != nil {
		return err
	}
	for _, s := range w.Order() {
		b, err := data(s)
		if err != nil {
			w.Abort()
			return &Error{Path: path, Msg: fmt.Sprintf("tensor %q: %v", s.Name, err)}
		}
		if err := w.Write(s.Name, b); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Commit()
}
