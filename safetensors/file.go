package safetensors

import (
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"

	"github.com/loratool/loratool/dtype"
)

// readHeader reads and parses the header of an open file of the given size
// using only ReadAt of the first 8+N bytes.
func readHeader(f *os.File, size int64) (*Header, error) {
	var lenBuf [8]byte
	if size >= 8 {
		if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
			return nil, errorf("reading the header length: %v", err)
		}
	}
	n, err := headerLen(lenBuf[:], size)
	if err != nil {
		return nil, err
	}
	// n is validated against the file size and the 100 MB cap above.
	buf := make([]byte, 8+n)
	copy(buf, lenBuf[:])
	if _, err := f.ReadAt(buf[8:], 8); err != nil {
		return nil, errorf("reading the %d-byte header: %v", n, err)
	}
	return ParseHeader(buf, size)
}

// ReadHeader reads and validates only the header of the safetensors file at
// path (the first 8+N bytes, with ReadAt; no mapping). Errors are *Error.
func ReadHeader(path string) (*Header, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, &Error{Path: path, Msg: openMsg(err)}
	}
	defer f.Close()
	h, err := readHeader(f, st.Size())
	return h, withPath(path, err)
}

func openMsg(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// File is an open safetensors file whose data section is memory-mapped
// read-only. Its methods are safe for concurrent use except Close.
type File struct {
	Path string
	*Header

	mapping []byte  // the whole file, or nil when the data section is empty
	data    []byte  // mapping[DataOffset:]
	dec     Decoder // set for views of files in other formats (NewView)
}

// Open reads and validates the header of the file at path, then maps the
// file read-only (MAP_SHARED). It re-checks the file size after mapping and
// fails if the file changed size. A file with an empty data section is not
// mapped at all. Errors are *Error.
func Open(path string) (*File, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, &Error{Path: path, Msg: openMsg(err)}
	}
	defer f.Close()
	h, err := readHeader(f, st.Size())
	if err != nil {
		return nil, withPath(path, err)
	}
	sf := &File{Path: path, Header: h}
	if h.DataSize() == 0 {
		return sf, nil
	}
	if h.FileSize > math.MaxInt {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("file of %d bytes is too large to map on this platform", h.FileSize)}
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(h.FileSize), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, &Error{Path: path, Msg: "mmap: " + err.Error()}
	}
	st2, err := f.Stat()
	if err != nil || st2.Size() != h.FileSize {
		_ = unix.Munmap(m)
		now := int64(-1)
		if err == nil {
			now = st2.Size()
		}
		return nil, &Error{Path: path, Msg: fmt.Sprintf("file changed size while being opened (%d bytes, now %d)", h.FileSize, now)}
	}
	sf.mapping = m
	sf.data = m[h.DataOffset:]
	return sf, nil
}

// Bytes returns the raw little-endian bytes of tensor t as a zero-copy view
// into the mapping. It returns nil if the file is closed or t's offsets do
// not lie within the data section. The slice must not be used after Close.
func (f *File) Bytes(t TensorInfo) []byte {
	if t.Begin < 0 || t.End < t.Begin || t.End > int64(len(f.data)) {
		if t.Begin == 0 && t.End == 0 {
			return []byte{}
		}
		return nil
	}
	if t.Begin == t.End {
		return []byte{}
	}
	return f.data[t.Begin:t.End:t.End]
}

// Float32 decodes tensor t to float32, reusing dst if its capacity suffices,
// and returns the decoded values (len = t.NumElements()). It fails for
// dtypes that cannot be decoded (F4, F6_*, C64) and for a closed file.
func (f *File) Float32(t TensorInfo, dst []float32) ([]float32, error) {
	if f.dec != nil {
		return f.dec.DecodeFloat32(t, dst)
	}
	if !t.DType.CanDecode() {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: cannot decode %v to float32", t.Name, t.DType)}
	}
	n := t.NumElements()
	if n < 0 || n > math.MaxInt {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: invalid shape %v", t.Name, t.Shape)}
	}
	b := f.Bytes(t)
	if b == nil {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: offsets [%d %d] outside the data section (or file closed)", t.Name, t.Begin, t.End)}
	}
	if int64(cap(dst)) >= n {
		dst = dst[:n]
	} else {
		dst = make([]float32, n)
	}
	if err := dtype.Decode(t.DType, b, dst); err != nil {
		return nil, &Error{Path: f.Path, Msg: fmt.Sprintf("tensor %q: %v", t.Name, err)}
	}
	return dst, nil
}

// Advise tells the kernel the expected access pattern of the mapping:
// sequential (whole-file passes such as hashing or merging) or random
// (inspecting a few tensors). It is best effort; errors are ignored.
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

// Release tells the kernel the process is done with tensor t's bytes for
// now (MADV_DONTNEED on the whole pages inside it): the pages leave the
// process's resident set but stay in the page cache, so streaming a
// checkpoint far larger than RAM keeps the RSS bounded. The bytes remain
// readable (they are faulted in again on access). Best effort.
func (f *File) Release(t TensorInfo) {
	if f.mapping == nil || t.End <= t.Begin {
		return
	}
	page := int64(os.Getpagesize())
	start := f.DataOffset + t.Begin
	end := f.DataOffset + t.End
	start = (start + page - 1) / page * page
	end = end / page * page
	if end <= start || end > int64(len(f.mapping)) {
		return
	}
	_ = unix.Madvise(f.mapping[start:end], unix.MADV_DONTNEED)
}

// Close unmaps the file. Slices returned by Bytes become invalid. Calling
// Close more than once is harmless.
func (f *File) Close() error {
	if f.dec != nil {
		d := f.dec
		f.dec = nil
		return d.Close()
	}
	m := f.mapping
	f.mapping, f.data = nil, nil
	if m == nil {
		return nil
	}
	if err := unix.Munmap(m); err != nil {
		return &Error{Path: f.Path, Msg: "munmap: " + err.Error()}
	}
	return nil
}
