package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hb builds raw GGUF headers for malformed-file vectors.
type hb struct{ b []byte }

func (h *hb) u32(v uint32) *hb  { h.b = binary.LittleEndian.AppendUint32(h.b, v); return h }
func (h *hb) u64(v uint64) *hb  { h.b = binary.LittleEndian.AppendUint64(h.b, v); return h }
func (h *hb) str(s string) *hb  { h.u64(uint64(len(s))); h.b = append(h.b, s...); return h }
func (h *hb) raw(b ...byte) *hb { h.b = append(h.b, b...); return h }
func (h *hb) pad(n int) *hb {
	for len(h.b)%n != 0 {
		h.b = append(h.b, 0)
	}
	return h
}

func start(version uint32, nt, nkv uint64) *hb {
	h := &hb{b: []byte("GGUF")}
	return h.u32(version).u64(nt).u64(nkv)
}

// tensor appends a tensor info.
func (h *hb) tensor(name string, typ Type, off uint64, dims ...uint64) *hb {
	h.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		h.u64(d)
	}
	return h.u32(uint32(typ)).u64(off)
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.gguf")
	kvs := []KV{
		{"general.architecture", "flux"}, {"general.quantization_version", uint32(2)},
		{"general.file_type", uint32(15)}, {"a.i8", int8(-3)}, {"a.u16", uint16(7)}, {"a.i16", int16(-7)},
		{"a.f32", float32(1.5)}, {"a.f64", 2.25}, {"a.b", true}, {"a.u64", uint64(1 << 40)}, {"a.i64", int64(-1 << 40)},
		{"a.u8", uint8(9)}, {"a.i32", int32(-9)},
		{"arr.s", []string{"x", "", "yz"}}, {"arr.i32", []int32{3, 4, 5}}, {"arr.f", []float32{1, 2}}, {"arr.b", []bool{true, false}},
	}
	specs := []TensorSpec{{"w", Q4_K, []int64{2, 256}}, {"b", F32, []int64{3}}, {"v", F16, []int64{1, 2, 3, 4, 5}}}
	w, err := Create(path, kvs, specs)
	if err != nil {
		t.Fatal(err)
	}
	x := goldenInputs(2)
	if err := w.WriteFloat32("w", x[:512], 1); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFloat32("b", []float32{1, -2, 3.5}, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFloat32("v", x[:120], 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Size() != w.FileSize() || st.Size()%32 != 0 {
		t.Fatalf("size %d, writer said %d", st.Size(), w.FileSize())
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || len(f.KV) != len(kvs) || len(f.Tensors) != 3 {
		t.Fatalf("header %+v", f.Header)
	}
	for i, kv := range kvs {
		got := f.KV[i]
		if got.Key != kv.Key || TypeName(got.Value) != TypeName(kv.Value) {
			t.Errorf("kv %d: %v %s, want %v %s", i, got.Key, TypeName(got.Value), kv.Key, TypeName(kv.Value))
		}
	}
	if s, _ := f.GetString("general.architecture"); s != "flux" {
		t.Errorf("architecture %q", s)
	}
	ti, _ := f.Lookup("w")
	if ti.Dims[0] != 256 || ti.Dims[1] != 2 || ti.Size != 288 {
		t.Errorf("w: %+v", ti)
	}
	want := make([]byte, 288)
	Quantize(Q4_K, x[:512], want)
	if !bytes.Equal(f.Bytes(ti), want) {
		t.Error("w bytes differ")
	}
	tb, _ := f.Lookup("b")
	vals, err := f.Float32(tb, nil)
	if err != nil || vals[1] != -2 || vals[2] != 3.5 {
		t.Errorf("b = %v %v", vals, err)
	}
	tv, _ := f.Lookup("v")
	if s := tv.Shape(); len(s) != 5 || s[4] != 5 || s[0] != 1 {
		t.Errorf("v shape %v", s)
	}
	for _, ti := range f.Tensors {
		if (f.DataOffset+int64(ti.Offset))%32 != 0 {
			t.Errorf("%s misaligned", ti.Name)
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		specs []TensorSpec
		kvs   []KV
		want  string
	}{
		{[]TensorSpec{{"a", Q4_K, []int64{3, 100}}}, nil, "not a multiple of the Q4_K block size"},
		{[]TensorSpec{{"a", F32, []int64{1}}, {"a", F32, []int64{1}}}, nil, "duplicate tensor"},
		{[]TensorSpec{{strings.Repeat("n", 128), F32, []int64{1}}}, nil, "longer than 127"},
		{nil, []KV{{"k", 1}}, "unsupported value type"},
		{nil, []KV{{"k", "a"}, {"k", "b"}}, "duplicate metadata key"},
		{nil, []KV{{"general.alignment", uint32(64)}}, "general.alignment"},
	} {
		_, err := Create(filepath.Join(dir, "x.gguf"), c.kvs, c.specs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want %q", c.specs, c.kvs, err, c.want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("left files: %v", ents)
	}
	// Abort leaves nothing behind; Commit before all tensors fails.
	w, err := Create(filepath.Join(dir, "y.gguf"), nil, []TensorSpec{{"a", F32, []int64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("b", make([]byte, 4)); err == nil {
		t.Error("out of order write accepted")
	}
	if err := w.Commit(); err == nil {
		t.Error("early commit accepted")
	}
	ents, _ = os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("left files: %v", ents)
	}
}

// malformed lists headers that must be rejected, with the error text.
func malformed() []struct {
	name string
	b    []byte
	want string
} {
	type vec = struct {
		name string
		b    []byte
		want string
	}
	return []vec{
		{"empty", nil, "not a GGUF file"},
		{"magic", append([]byte("GGML"), make([]byte, 40)...), "not a GGUF file"},
		{"v1", start(1, 0, 0).b, "version 1"},
		{"v4", start(4, 0, 0).b, "unsupported GGUF version 4"},
		{"bigendian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"truncated counts", []byte("GGUF\x03\x00\x00\x00\x01"), "tensor count needs 8 bytes"},
		{"kv count bomb", start(3, 0, 1<<60).b, "metadata count"},
		{"tensor count bomb", start(3, 1<<60, 0).b, "tensor count"},
		{"key length bomb", start(3, 0, 1).u64(1 << 62).raw(make([]byte, 16)...).b, "exceeds the limit"},
		{"empty key", start(3, 0, 1).str("").u32(4).u32(1).b, "empty"},
		{"bad utf8 key", start(3, 0, 1).str("\xff").u32(4).u32(1).b, "UTF-8"},
		{"dup key", start(3, 0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(1).b, "duplicate metadata key"},
		{"bad value type", start(3, 0, 1).str("k").u32(13).u32(1).b, "unknown value type 13"},
		{"bool 2", start(3, 0, 1).str("k").u32(7).raw(2).b, "neither 0 nor 1"},
		{"string length bomb", start(3, 0, 1).str("k").u32(8).u64(1 << 40).b, "needs 1099511627776 bytes"},
		{"array count bomb", start(3, 0, 1).str("k").u32(9).u32(4).u64(1 << 61).b, "cannot fit"},
		{"string array bomb", start(3, 0, 1).str("k").u32(9).u32(8).u64(1 << 40).b, "cannot fit"},
		{"nested array", start(3, 0, 1).str("k").u32(9).u32(9).u64(1).b, "arrays of arrays"},
		{"array elem type", start(3, 0, 1).str("k").u32(9).u32(99).u64(1).b, "unknown array element type"},
		{"alignment 0", start(3, 0, 1).str("general.alignment").u32(4).u32(0).b, "not a power of two"},
		{"alignment 48", start(3, 0, 1).str("general.alignment").u32(4).u32(48).b, "not a power of two"},
		{"alignment type", start(3, 0, 1).str("general.alignment").u32(10).u64(32).b, "must be UINT32"},
		{"empty name", start(3, 1, 0).tensor("", F32, 0, 4).pad(64).b, "empty name"},
		{"long name", start(3, 1, 0).tensor(strings.Repeat("x", 1025), F32, 0, 4).b, "exceeds the limit"},
		{"dup tensor", start(3, 2, 0).tensor("t", F32, 0, 4).tensor("t", F32, 32, 4).pad(32).raw(make([]byte, 64)...).b, "duplicate tensor name"},
		{"0 dims", start(3, 1, 0).tensor("t", F32, 0).pad(64).b, "0 dimensions"},
		{"9 dims", start(3, 1, 0).tensor("t", F32, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1).b, "9 dimensions"},
		{"dim overflow", start(3, 1, 0).tensor("t", F32, 0, 1<<40, 1<<40).b, "overflows"},
		{"huge dim", start(3, 1, 0).tensor("t", F32, 0, math.MaxUint64).b, "dimension 0 is"},
		{"size overflow", start(3, 1, 0).tensor("t", F64, 0, 1<<62).b, "overflow"},
		{"unknown type", start(3, 1, 0).tensor("t", Type(4), 0, 4).b, "unknown type 4"},
		{"block size", start(3, 1, 0).tensor("t", Q4_K, 0, 100, 2).b, "not a multiple of the Q4_K block size"},
		{"misaligned", start(3, 1, 0).tensor("t", F32, 4, 4).pad(32).raw(make([]byte, 64)...).b, "not a multiple of the alignment"},
		{"beyond end", start(3, 1, 0).tensor("t", F32, 0, 16).pad(32).raw(make([]byte, 32)...).b, "beyond the end"},
		{"offset bomb", start(3, 1, 0).tensor("t", F32, 1<<60, 4).pad(32).b, "beyond the end"},
		{"overlap", start(3, 2, 0).tensor("a", F32, 0, 16).tensor("b", F32, 32, 8).pad(32).raw(make([]byte, 64)...).b, "overlaps"},
		{"no data section", start(3, 1, 0).tensor("t", F32, 0, 4).b, "beyond the end"},
	}
}

func TestMalformed(t *testing.T) {
	dir := t.TempDir()
	for _, c := range malformed() {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHeader(c.b, int64(len(c.b)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			p := filepath.Join(dir, c.name+".gguf")
			os.WriteFile(p, c.b, 0o644)
			_, err = Open(p)
			if err == nil || !strings.HasPrefix(err.Error(), p+": ") {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

// TestAcceptsRealWorldQuirks: what ggml itself refuses but real files
// contain (5-D tensors, long names, files without metadata), plus gaps
// between tensors and v2 files.
func TestAcceptsRealWorldQuirks(t *testing.T) {
	long := "model.diffusion_model." + strings.Repeat("x", 120)
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"5d", start(3, 1, 0).tensor("patch_embedding.weight", F32, 0, 2, 2, 1, 2, 2).pad(32).raw(make([]byte, 64)...).b},
		{"long name no metadata", start(3, 1, 0).tensor(long, F16, 0, 16).pad(32).raw(make([]byte, 32)...).b},
		{"v2", start(2, 1, 0).tensor("t", F32, 0, 4).pad(32).raw(make([]byte, 16)...).b},
		{"gap", start(3, 2, 0).tensor("a", F32, 0, 4).tensor("b", F32, 64, 4).pad(32).raw(make([]byte, 96)...).b},
		{"alignment 64", start(3, 1, 1).str("general.alignment").u32(4).u32(64).tensor("t", F32, 0, 4).pad(64).raw(make([]byte, 16)...).b},
		{"no tensors", start(3, 0, 1).str("k").u32(8).str("v").b},
	} {
		if _, err := ParseHeader(c.b, int64(len(c.b))); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, c := range malformed() {
		f.Add(c.b)
	}
	f.Add(start(3, 1, 1).str("general.architecture").u32(8).str("flux").tensor("t", Q8_0, 0, 32).pad(32).raw(make([]byte, 34)...).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b, int64(len(b)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// Everything the header promises must hold.
		for _, ti := range h.Tensors {
			end := h.DataOffset + int64(ti.Offset) + ti.Size
			if end > int64(len(b)) || ti.Size < 0 {
				t.Fatalf("tensor %q ends at %d of %d", ti.Name, end, len(b))
			}
			if ti.Type.CanDequantize() && ti.NumElements() < 1<<16 {
				d := make([]float32, ti.NumElements())
				if err := Dequantize(ti.Type, b[h.DataOffset+int64(ti.Offset):end], d); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
