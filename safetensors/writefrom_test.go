package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/dtype"
)

// TestWriteFrom mixes buffered writes with kernel copies from another file
// and checks the bytes land exactly where the header says.
func TestWriteFrom(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	payload := []byte("0123456789abcdefXXXXXXXXhello world!")
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	sf, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	out := filepath.Join(dir, "out.safetensors")
	specs := []TensorSpec{
		{Name: "a", DType: dtype.U8, Shape: []int64{16}},
		{Name: "b", DType: dtype.U8, Shape: []int64{4}},
		{Name: "c", DType: dtype.U8, Shape: []int64{12}},
	}
	w, err := Create(out, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.WriteFrom("a", sf, 0, 16); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("b", []byte("WXYZ")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrom("c", sf, 24, 12); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrom("c", sf, 24, 12); err == nil {
		t.Fatal("writing past the last tensor succeeded")
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, want := range map[string]string{"a": "0123456789abcdef", "b": "WXYZ", "c": "hello world!"} {
		ti, _ := f.Lookup(name)
		if got := f.Bytes(ti); !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	w2, _ := Create(filepath.Join(dir, "bad.safetensors"), specs[:1], nil)
	defer w2.Abort()
	if err := w2.WriteFrom("a", sf, 30, 16); err == nil {
		t.Fatal("a short source was accepted")
	}
}
