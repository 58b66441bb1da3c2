package safetensors

import (
	"os"
	"path/filepath"
)

// CreateRaw returns a Writer for a file of another format (GGUF, ...) that
// has the same guarantees as Create: the bytes go to a temporary file next
// to path, Commit fsyncs it, renames it into place and fsyncs the
// directory, and Abort or a signal (CleanupOnSignal) removes it. size is
// the expected final size, reported by FileSize. The caller writes every
// byte with WriteRaw and CopyRaw; the tensor methods are not used.
func CreateRaw(path string, size int64) (*Writer, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, &Error{Path: path, Msg: "creating the output folder: " + openMsg(err)}
	}
	w := &Writer{path: path, fileSize: size}
	if err := w.openTemp(dir); err != nil {
		return nil, err
	}
	return w, nil
}

// WriteRaw appends b to a Writer made by CreateRaw.
func (w *Writer) WriteRaw(b []byte) error {
	if err := w.checkRaw(); err != nil {
		return err
	}
	return w.write(b)
}

// CopyRaw appends n bytes at offset off of src to a Writer made by
// CreateRaw, inside the kernel where possible (copy_file_range); what
// names the bytes in error messages.
func (w *Writer) CopyRaw(what string, src *os.File, off, n int64) error {
	if err := w.checkRaw(); err != nil {
		return err
	}
	return w.copyRange(what, src, off, n)
}

// Written returns the number of bytes written so far.
func (w *Writer) Written() int64 { return w.written }

func (w *Writer) checkRaw() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return &Error{Path: w.path, Msg: "writer is already committed or aborted"}
	}
	if len(w.order) != 0 {
		return &Error{Path: w.path, Msg: "raw writes on a safetensors writer"}
	}
	return nil
}

// Decoder decodes the tensors of a file in another format (GGUF) for a
// view made by NewView.
type Decoder interface {
	DecodeFloat32(t TensorInfo, dst []float32) ([]float32, error)
	Close() error
}

// NewView returns a File that presents a file of another format as a
// header-only safetensors file: tensors lists every tensor with the dtype
// and shape it decodes to (offsets are only nominal), Float32 decodes
// through dec, Bytes returns nil, Close closes dec. Code that reads
// tensors with Float32 works on such views unchanged.
func NewView(path string, tensors []TensorInfo, dec Decoder) *File {
	h := &Header{Tensors: tensors}
	for _, t := range tensors {
		h.FileSize = max(h.FileSize, t.End)
	}
	return &File{Path: path, Header: h, dec: dec}
}
