package pt

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// pw is a tiny hand-rolled pickle writer used to build test fixtures.
type pw struct{ bytes.Buffer }

func (w *pw) op(b ...byte) *pw { w.Write(b); return w }

func (w *pw) proto(v byte) *pw { return w.op(0x80, v) }

func (w *pw) mark() *pw { return w.op('(') }

func (w *pw) stop() *pw { return w.op('.') }

// str writes BINUNICODE.
func (w *pw) str(s string) *pw {
	w.op('X')
	binary.Write(&w.Buffer, binary.LittleEndian, uint32(len(s)))
	w.WriteString(s)
	return w
}

// shortStr writes SHORT_BINUNICODE (protocol 4).
func (w *pw) shortStr(s string) *pw {
	w.op(0x8c, byte(len(s)))
	w.WriteString(s)
	return w
}

// int writes the smallest integer opcode for v.
func (w *pw) int(v int64) *pw {
	switch {
	case v >= 0 && v < 256:
		return w.op('K', byte(v))
	case v >= 0 && v < 65536:
		return w.op('M', byte(v), byte(v>>8))
	case v >= -1<<31 && v < 1<<31:
		w.op('J')
		binary.Write(&w.Buffer, binary.LittleEndian, int32(v))
		return w
	}
	w.op(0x8a, 8)
	binary.Write(&w.Buffer, binary.LittleEndian, v)
	return w
}

func (w *pw) global(mod, name string) *pw {
	w.op('c')
	w.WriteString(mod + "\n" + name + "\n")
	return w
}

// tuple writes MARK, the items, TUPLE.
func (w *pw) tuple(items ...int64) *pw {
	w.mark()
	for _, it := range items {
		w.int(it)
	}
	return w.op('t')
}

// orderedDict pushes collections.OrderedDict().
func (w *pw) orderedDict() *pw {
	return w.global("collections", "OrderedDict").op(')', 'R')
}

// storage pushes the storage object of a persistent id.
func (w *pw) storage(class, key string, numel int64) *pw {
	w.mark().str("storage").global("torch", class).str(key).str("cpu").int(numel).op('t')
	return w.op('Q')
}

// tensor pushes torch._utils._rebuild_tensor_v2(storage, offset, shape,
// stride, False, OrderedDict()).
func (w *pw) tensor(class, key string, numel, offset int64, shape, stride []int64) *pw {
	w.global("torch._utils", "_rebuild_tensor_v2")
	w.mark()
	w.storage(class, key, numel)
	w.int(offset)
	w.tuple(shape...)
	w.tuple(stride...)
	w.op(0x89) // NEWFALSE
	w.orderedDict()
	w.op('t')
	return w.op('R')
}

// zipEntry is one file of a test archive.
type zipEntry struct {
	name    string
	data    []byte
	deflate bool
}

// writeZip writes a torch-style zip archive and returns its path.
func writeZip(t *testing.T, entries ...zipEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		m := zip.Store
		if e.deflate {
			m = zip.Deflate
		}
		f, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "model.ckpt", buf.Bytes())
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// le builds little-endian bytes from values of the given byte width.
func le(width int, vals ...uint64) []byte {
	out := make([]byte, 0, width*len(vals))
	for _, v := range vals {
		for i := 0; i < width; i++ {
			out = append(out, byte(v>>(8*i)))
		}
	}
	return out
}
