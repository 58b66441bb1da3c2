package safetensors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
)

func TestParseHeaderRejects(t *testing.T) {
	for _, v := range failVectors {
		t.Run(v.name, func(t *testing.T) {
			h, err := ParseHeader(v.file, int64(len(v.file)))
			if err == nil {
				t.Fatalf("accepted: %+v", h)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if !strings.Contains(err.Error(), v.want) {
				t.Fatalf("error %q, want it to contain %q", err, v.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseHeaderAccepts(t *testing.T) {
	for _, v := range goodVectors {
		t.Run(v.name, func(t *testing.T) {
			h, err := ParseHeader(v.file, int64(len(v.file)))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, h)
		})
	}
}

// checkInvariants verifies what every accepted header guarantees.
func checkInvariants(t testing.TB, h *Header) {
	t.Helper()
	if h.DataOffset != 8+h.HeaderLen {
		t.Fatalf("DataOffset %d != 8+%d", h.DataOffset, h.HeaderLen)
	}
	var pos int64
	for i, ti := range h.Tensors {
		if ti.Begin != pos || ti.End < ti.Begin {
			t.Fatalf("tensor %d %q at [%d,%d], expected to start at %d", i, ti.Name, ti.Begin, ti.End, pos)
		}
		n, err := dtype.Size(ti.DType, ti.NumElements())
		if err != nil || n != ti.End-ti.Begin {
			t.Fatalf("tensor %q: size %d (%v) vs offsets %d", ti.Name, n, err, ti.End-ti.Begin)
		}
		if got, ok := h.Lookup(ti.Name); !ok || !reflect.DeepEqual(got, ti) {
			t.Fatalf("Lookup(%q) = %+v, %v", ti.Name, got, ok)
		}
		pos = ti.End
	}
	if h.DataOffset+pos != h.FileSize {
		t.Fatalf("data ends at %d, file size %d", h.DataOffset+pos, h.FileSize)
	}
}

func TestParseHeaderDetails(t *testing.T) {
	// good_reverse_order: JSON lists b before a; header sorted by offset.
	var v vector
	for _, g := range goodVectors {
		if g.name == "good_reverse_order" {
			v = g
		}
	}
	h, err := ParseHeader(v.file, int64(len(v.file)))
	if err != nil {
		t.Fatal(err)
	}
	hdrLen := int64(len(v.file) - 8 - 14)
	want := &Header{
		Tensors: []TensorInfo{
			{Name: "a", DType: dtype.F32, Shape: []int64{2}, Begin: 0, End: 8},
			{Name: "b", DType: dtype.F16, Shape: []int64{3}, Begin: 8, End: 14},
		},
		Metadata:   map[string]string{"a": "b"},
		HeaderLen:  hdrLen,
		DataOffset: 8 + hdrLen,
		FileSize:   int64(len(v.file)),
	}
	h.index = nil
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %+v\nwant %+v", h, want)
	}
	if _, ok := h.Lookup("c"); ok {
		t.Error("Lookup of a missing tensor succeeded")
	}

	tests := []struct {
		file     []byte
		name     string
		shape    []int64
		metadata map[string]string
	}{
		{mk("{"+tj("test", "I32", "[]", "[0,4]")+"}", zeros(4)), "test", []int64{}, nil},
		{mk("{"+tj(`caf\u00e9.\"q\"`, "U8", "[1]", "[0,1]")+"}", zeros(1)), `café."q"`, []int64{1}, nil},
		{mk(`{"__metadata__":{},`+tj("z", "U8", "[2,0]", "[0,0]")+"}", nil), "z", []int64{2, 0}, map[string]string{}},
	}
	for _, tc := range tests {
		h, err := ParseHeader(tc.file, int64(len(tc.file)))
		if err != nil {
			t.Fatal(err)
		}
		ti, ok := h.Lookup(tc.name)
		if !ok || !reflect.DeepEqual(ti.Shape, tc.shape) || !reflect.DeepEqual(h.Metadata, tc.metadata) {
			t.Errorf("%q: got %+v %v, metadata %#v", tc.name, ti, ok, h.Metadata)
		}
	}
}

func TestParseHeaderPrefixOnly(t *testing.T) {
	file := mk("{"+tj("x", "F32", "[2]", "[0,8]")+"}", zeros(8))
	hdrEnd := len(file) - 8
	if _, err := ParseHeader(file[:hdrEnd], int64(len(file))); err != nil {
		t.Fatalf("header-only prefix: %v", err)
	}
	if _, err := ParseHeader(file[:hdrEnd-1], int64(len(file))); err == nil || !strings.Contains(err.Error(), "header prefix is") {
		t.Fatalf("short prefix: %v", err)
	}
	if _, err := ParseHeader(file[:4], int64(len(file))); err == nil {
		t.Fatal("4-byte prefix accepted")
	}
}

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		js string
		ok bool
	}{
		{strings.Repeat("[", 64) + strings.Repeat("]", 64), true},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), false},
		{strings.Repeat("{\"a\":", 65), false},
		{`"` + strings.Repeat("[", 100) + `"`, true},
		{`"\"` + strings.Repeat("[", 100) + `"`, true},
		{`"\\"` + strings.Repeat("[", 65), false},
	}
	for _, tc := range tests {
		if err := checkDepth([]byte(tc.js)); (err == nil) != tc.ok {
			t.Errorf("checkDepth(%.20q...) = %v, want ok=%v", tc.js, err, tc.ok)
		}
	}
}

func TestTooManyTensors(t *testing.T) {
	old := maxTensors
	maxTensors = 3
	defer func() { maxTensors = old }()
	build := func(n int) []byte {
		var parts []string
		for i := 0; i < n; i++ {
			parts = append(parts, tj(fmt.Sprint("t", i), "U8", "[1]", fmt.Sprintf("[%d,%d]", i, i+1)))
		}
		return mk("{"+strings.Join(parts, ",")+"}", zeros(n))
	}
	if _, err := ParseHeader(build(3), int64(len(build(3)))); err != nil {
		t.Fatalf("3 tensors at limit 3: %v", err)
	}
	f := build(4)
	if _, err := ParseHeader(f, int64(len(f))); err == nil || !strings.Contains(err.Error(), "more than 3 tensors") {
		t.Fatalf("4 tensors at limit 3: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	if got := (&Error{Msg: "m"}).Error(); got != "m" {
		t.Errorf("got %q", got)
	}
	if got := (&Error{Path: "p", Msg: "m"}).Error(); got != "p: m" {
		t.Errorf("got %q", got)
	}
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadHeaderAndOpenFiles runs every vector through the file-based
// entry points: same verdict, error message prefixed with the path.
func TestReadHeaderAndOpenFiles(t *testing.T) {
	all := append(append([]vector{}, failVectors...), goodVectors...)
	for _, v := range all {
		p := writeTemp(t, v.name+".safetensors", v.file)
		h, err1 := ReadHeader(p)
		f, err2 := Open(p)
		for _, err := range []error{err1, err2} {
			if v.want == "" {
				if err != nil {
					t.Errorf("%s: %v", v.name, err)
				}
				continue
			}
			if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), v.want) {
				t.Errorf("%s: error %v, want %q with path", v.name, err, v.want)
			}
		}
		if err1 == nil && err2 == nil {
			h.index, f.Header.index = nil, nil
			if !reflect.DeepEqual(h, f.Header) {
				t.Errorf("%s: ReadHeader and Open differ", v.name)
			}
			for _, ti := range f.Tensors {
				if b := f.Bytes(ti); int64(len(b)) != ti.End-ti.Begin || b == nil {
					t.Errorf("%s: Bytes(%q) has %d bytes", v.name, ti.Name, len(b))
				}
			}
		}
		if f != nil {
			if err := f.Close(); err != nil {
				t.Error(err)
			}
			if err := f.Close(); err != nil {
				t.Error("second Close:", err)
			}
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadHeader(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestOpenBytesAndFloat32(t *testing.T) {
	// F16 [1, -2, 0.5], F32 [1.5], F4 [2]: hand-encoded little-endian bytes.
	data := []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0, 0, 0xc0, 0x3f}
	file := mk("{"+tj("h", "F16", "[3]", "[0,6]")+","+tj("f", "F32", "[]", "[6,10]")+","+tj("q", "F4", "[2]", "[10,11]")+"}", append(data, 0x21))
	f, err := Open(writeTemp(t, "x.safetensors", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Advise(true)
	f.Advise(false)
	h, _ := f.Lookup("h")
	vals, err := f.Float32(h, nil)
	if err != nil || !reflect.DeepEqual(vals, []float32{1, -2, 0.5}) {
		t.Fatalf("h = %v, %v", vals, err)
	}
	buf := make([]float32, 0, 8)
	s, _ := f.Lookup("f")
	vals, err = f.Float32(s, buf)
	if err != nil || !reflect.DeepEqual(vals, []float32{1.5}) || &vals[0] != &buf[:1][0] {
		t.Fatalf("f = %v, %v (buffer reused: %v)", vals, err, err == nil && &vals[0] == &buf[:1][0])
	}
	q, _ := f.Lookup("q")
	if b := f.Bytes(q); len(b) != 1 || b[0] != 0x21 {
		t.Fatalf("Bytes(q) = %v", b)
	}
	if _, err := f.Float32(q, nil); err == nil || !strings.Contains(err.Error(), "cannot decode F4") {
		t.Fatalf("Float32(F4): %v", err)
	}
	// Out-of-range TensorInfo from the caller: no panic, nil / error.
	bad := TensorInfo{Name: "bad", DType: dtype.U8, Shape: []int64{100}, Begin: 0, End: 100}
	if f.Bytes(bad) != nil {
		t.Error("Bytes of out-of-range tensor not nil")
	}
	if _, err := f.Float32(bad, nil); err == nil {
		t.Error("Float32 of out-of-range tensor succeeded")
	}
	f.Close()
	if f.Bytes(h) != nil {
		t.Error("Bytes after Close not nil")
	}
}

// TestCorpus opens every real file of the shared corpus (skipped if absent).
func TestCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../shared/corpus/files/*.safetensors")
	if len(files) == 0 {
		t.Skip("../../shared/corpus/files not present")
	}
	for _, p := range files {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		st, _ := os.Stat(p)
		if f.FileSize != st.Size() || len(f.Tensors) == 0 {
			t.Errorf("%s: FileSize %d vs %d, %d tensors", p, f.FileSize, st.Size(), len(f.Tensors))
		}
		for _, ti := range f.Tensors {
			n, err := dtype.Size(ti.DType, ti.NumElements())
			if b := f.Bytes(ti); err != nil || int64(len(b)) != n {
				t.Errorf("%s: tensor %q has %d bytes, shape %v of %v needs %d", p, ti.Name, len(b), ti.Shape, ti.DType, n)
			}
			if ti.DType.CanDecode() {
				if _, err := f.Float32(ti, nil); err != nil {
					t.Error(err)
				}
			}
		}
		f.Close()
	}
}
