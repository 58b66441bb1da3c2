package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrNotRegular is returned for inputs that are not regular files (FIFOs,
// devices, sockets, directories): they are refused before being opened,
// since opening a FIFO blocks and reading a device may never end.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens path for reading only if it is a regular file: it is
// checked with stat before the open (so a FIFO is never opened) and again
// on the open descriptor (opened non-blocking, so a FIFO swapped in
// between cannot hang). Errors are the *os.PathError of stat/open or
// ErrNotRegular.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, ErrNotRegular
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = ErrNotRegular
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// ReadFileLimit reads a whole regular file of at most limit bytes (small
// JSON inputs: workflows, adapter configs). Errors do not repeat the path.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, fmt.Errorf("%d bytes, larger than the %d MiB limit", st.Size(), limit>>20)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than the %d MiB limit", limit>>20)
	}
	return b, nil
}
