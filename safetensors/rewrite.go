package safetensors

import (
	"io"
	"os"
)

// SetMode sets the permission bits the file gets on Commit (default 0644),
// e.g. to keep an input's mode when a file is rewritten in place.
func (w *Writer) SetMode(mode os.FileMode) { w.mode = mode.Perm() }

// ReadBack flushes what was written so far and returns the temporary file
// for reading, so a caller can verify the output before Commit renames it
// into place. The reader must not be used after Commit or Abort.
func (w *Writer) ReadBack() (io.ReaderAt, error) {
	if w.err != nil {
		return nil, w.err
	}
	if err := w.bw.Flush(); err != nil {
		return nil, w.fail(&Error{Path: w.path, Msg: "writing: " + err.Error()})
	}
	return w.f, nil
}

// CanonicalHeader returns the tensors in the order Create writes them and
// the complete header Create would write for them (8-byte length prefix,
// compact JSON, padded with spaces to a multiple of 8, as safetensors ≥
// 0.3.1 pads it). Hashes defined over "the file the Python safetensors
// library would save" (kohya's sshs_* hashes) are computed from it.
func CanonicalHeader(tensors []TensorSpec, metadata map[string]string) ([]TensorSpec, []byte, error) {
	order, _, hdr, err := buildHeader(tensors, metadata)
	return order, hdr, err
}
