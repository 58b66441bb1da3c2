package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/loratool/loratool/dtype"
)

// randomTensors returns one tensor per dtype (element counts chosen so
// sub-byte types fill whole bytes) plus a 0-rank and a zero-size tensor,
// with random contents.
func randomTensors(seed uint64) ([]TensorSpec, map[string][]byte) {
	r := rand.New(rand.NewPCG(seed, 7))
	var specs []TensorSpec
	data := map[string][]byte{}
	add := func(name string, d dtype.DType, shape []int64) {
		specs = append(specs, TensorSpec{Name: name, DType: d, Shape: shape})
		n := int64(1)
		for _, s := range shape {
			n *= s
		}
		size, err := dtype.Size(d, n)
		if err != nil {
			panic(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		data[name] = b
	}
	for d := dtype.Bool; d <= dtype.U64; d++ {
		add("t."+strings.ToLower(d.String()), d, []int64{2, 4, 3})
	}
	add("scalar", dtype.F32, []int64{})
	add("empty", dtype.F16, []int64{3, 0})
	add("f4.odd_rows", dtype.F4, []int64{1, 2})
	return specs, data
}

func writeAll(t testing.TB, path string, specs []TensorSpec, meta map[string]string, data map[string][]byte) {
	t.Helper()
	err := WriteFile(path, specs, meta, func(s TensorSpec) ([]byte, error) { return data[s.Name], nil })
	if err != nil {
		t.Fatal(err)
	}
}

func TestRoundTripAllDTypes(t *testing.T) {
	specs, data := randomTensors(1)
	meta := map[string]string{"format": "pt", "ss_note": "ünïcode \"quoted\"\n\t\x01"}
	p := filepath.Join(t.TempDir(), "rt.safetensors")
	writeAll(t, p, specs, meta, data)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Errorf("metadata = %#v", f.Metadata)
	}
	if len(f.Tensors) != len(specs) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(specs))
	}
	for _, s := range specs {
		ti, ok := f.Lookup(s.Name)
		if !ok {
			t.Fatalf("tensor %q missing", s.Name)
		}
		if ti.DType != s.DType || !reflect.DeepEqual(ti.Shape, s.Shape) || !bytes.Equal(f.Bytes(ti), data[s.Name]) {
			t.Errorf("tensor %q: %v %v, bytes equal %v", s.Name, ti.DType, ti.Shape, bytes.Equal(f.Bytes(ti), data[s.Name]))
		}
	}
	if f.HeaderLen%8 != 0 || f.DataOffset%8 != 0 {
		t.Errorf("header length %d not padded to a multiple of 8", f.HeaderLen)
	}
}

// TestGoldenBytes compares a small file with bytes derived by hand from the
// format description: compact JSON, __metadata__ first with sorted keys,
// tensors in canonical order, space padding to a multiple of 8.
func TestGoldenBytes(t *testing.T) {
	specs := []TensorSpec{
		{Name: "c", DType: dtype.U8, Shape: []int64{3}},
		{Name: "b", DType: dtype.F16, Shape: []int64{2}},
		{Name: "a", DType: dtype.F32, Shape: []int64{1}},
	}
	data := map[string][]byte{"a": {1, 2, 3, 4}, "b": {5, 6, 7, 8}, "c": {9, 10, 11}}
	meta := map[string]string{"z": "12", "a": "x\"y\\<>"}
	js := `{"__metadata__":{"a":"x\"y\\<>","z":"12"},` +
		`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},` +
		`"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},` +
		`"c":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}`
	// len(js) = 201 -> padded with 7 spaces to 208.
	if len(js) != 201 {
		t.Fatalf("hand-written header is %d bytes", len(js))
	}
	want := binary.LittleEndian.AppendUint64(nil, 208)
	want = append(want, js+"       "...)
	want = append(want, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	p := filepath.Join(t.TempDir(), "g.safetensors")
	writeAll(t, p, specs, meta, data)
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestDeterministic(t *testing.T) {
	specs, data := randomTensors(2)
	meta := map[string]string{"b": "2", "a": "1", "c": "3", "ss_tag_frequency": "{}"}
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "1.safetensors"), filepath.Join(dir, "2.safetensors")
	writeAll(t, p1, specs, meta, data)
	// Same tensors in a different input order, metadata map rebuilt.
	rev := append([]TensorSpec{}, specs...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	meta2 := map[string]string{}
	for k, v := range meta {
		meta2[k] = v
	}
	writeAll(t, p2, rev, meta2, data)
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("two writes of the same tensors differ")
	}
}

func TestCanonicalOrder(t *testing.T) {
	specs := []TensorSpec{
		{Name: "u8.b", DType: dtype.U8}, {Name: "f16.b", DType: dtype.F16}, {Name: "f32.z", DType: dtype.F32},
		{Name: "u8.a", DType: dtype.U8}, {Name: "bf16", DType: dtype.BF16}, {Name: "f16.a", DType: dtype.F16},
		{Name: "fp8", DType: dtype.F8E4M3}, {Name: "f32.a", DType: dtype.F32}, {Name: "i64", DType: dtype.I64},
		{Name: "bool", DType: dtype.Bool}, {Name: "f64", DType: dtype.F64}, {Name: "A", DType: dtype.F32},
	}
	// Rust enum order descending: I64 > F64 > F32 > BF16 > F16 > F8_E4M3 > U8 > BOOL; names by byte order.
	want := []string{"i64", "f64", "A", "f32.a", "f32.z", "bf16", "f16.a", "f16.b", "fp8", "u8.a", "u8.b", "bool"}
	w, err := Create(filepath.Join(t.TempDir(), "o.safetensors"), specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var got []string
	for _, s := range w.Order() {
		got = append(got, s.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v\nwant  %v", got, want)
	}
}

// TestCrossCheckNlpodyssey reads our output with an independent parser
// (github.com/nlpodyssey/safetensors, whole file in memory) for the dtypes
// it knows, and compares the data section with its own serializer's.
func TestCrossCheckNlpodyssey(t *testing.T) {
	known := map[dtype.DType]nlp.DType{
		dtype.Bool: nlp.BOOL, dtype.U8: nlp.U8, dtype.I8: nlp.I8, dtype.I16: nlp.I16, dtype.U16: nlp.U16,
		dtype.F16: nlp.F16, dtype.BF16: nlp.BF16, dtype.I32: nlp.I32, dtype.U32: nlp.U32, dtype.F32: nlp.F32,
		dtype.F64: nlp.F64, dtype.I64: nlp.I64, dtype.U64: nlp.U64,
	}
	all, data := randomTensors(3)
	var specs []TensorSpec
	views := map[string]nlp.TensorView{}
	for _, s := range all {
		d, ok := known[s.DType]
		if !ok || len(s.Shape) == 0 { // its NewTensorView rejects 0-rank tensors
			continue
		}
		specs = append(specs, s)
		shape := make([]uint64, len(s.Shape))
		for i, v := range s.Shape {
			shape[i] = uint64(v)
		}
		tv, err := nlp.NewTensorView(d, shape, data[s.Name])
		if err != nil {
			t.Fatal(err)
		}
		views[s.Name] = tv
	}
	specs = append(specs, TensorSpec{Name: "scalar", DType: dtype.F32, Shape: []int64{}})
	meta := map[string]string{"k": "v", "format": "pt"}
	p := filepath.Join(t.TempDir(), "x.safetensors")
	writeAll(t, p, specs, meta, data)
	buf, _ := os.ReadFile(p)

	st, err := nlp.Deserialize(buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != len(specs) {
		t.Fatalf("nlpodyssey sees %d tensors, want %d", st.Len(), len(specs))
	}
	for _, s := range specs {
		tv, ok := st.Tensor(s.Name)
		if !ok {
			t.Fatalf("nlpodyssey: tensor %q missing", s.Name)
		}
		shape := make([]int64, len(tv.Shape()))
		for i, v := range tv.Shape() {
			shape[i] = int64(v)
		}
		if tv.DType().String() != s.DType.String() || !reflect.DeepEqual(shape, s.Shape) || !bytes.Equal(tv.Data(), data[s.Name]) {
			t.Errorf("nlpodyssey: tensor %q: %v %v", s.Name, tv.DType(), tv.Shape())
		}
	}
	_, md, err := nlp.ReadMetadata(buf)
	if err != nil || !reflect.DeepEqual(md.Metadata(), meta) {
		t.Errorf("nlpodyssey metadata %v, %v", md.Metadata(), err)
	}
	// Its serializer (Rust order: dtype descending, then name) must produce
	// the same data section: this is what sshs_model_hash covers.
	var ref bytes.Buffer
	if err := nlp.SerializeToWriter(views, nil, &ref); err != nil {
		t.Fatal(err)
	}
	refHdr := binary.LittleEndian.Uint64(ref.Bytes())
	refData := ref.Bytes()[8+refHdr:]
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ours := buf[f.DataOffset:]
	sc, _ := f.Lookup("scalar") // the only tensor not in views; F32 sorts among the F32s
	ours = append(append([]byte{}, ours[:sc.Begin]...), ours[sc.End:]...)
	if !bytes.Equal(ours, refData) {
		t.Fatal("data section differs from nlpodyssey's serializer")
	}
}

func TestWriteFloat32(t *testing.T) {
	specs := []TensorSpec{
		{Name: "h", DType: dtype.F16, Shape: []int64{4}},
		{Name: "e", DType: dtype.F8E4M3, Shape: []int64{3}},
		{Name: "b", DType: dtype.BF16, Shape: []int64{1}},
	}
	p := filepath.Join(t.TempDir(), "f.safetensors")
	w, err := Create(p, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	nan := math.Float32frombits(0x7fc00000) // positive quiet NaN -> F16 0x7E00
	// Order: BF16 b, F16 h, F8_E4M3 e.
	if _, err := w.WriteFloat32("b", []float32{1}); err != nil {
		t.Fatal(err)
	}
	st, err := w.WriteFloat32("h", []float32{1, -2, 65520, nan})
	if err != nil || st != (dtype.Stats{NaN: 1}) {
		t.Fatalf("h: %+v %v", st, err)
	}
	st, err = w.WriteFloat32("e", []float32{470, 1, -1000})
	if err != nil || st != (dtype.Stats{Clamped: 2}) {
		t.Fatalf("e: %+v %v", st, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]byte{
		"b": {0x80, 0x3f},
		"h": {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x00, 0x7e},
		"e": {0x7e, 0x38, 0xfe},
	}
	for name, b := range want {
		ti, _ := f.Lookup(name)
		if got := f.Bytes(ti); !bytes.Equal(got, b) {
			t.Errorf("%s = % x, want % x", name, got, b)
		}
	}
}

func TestWriteFloat32Chunked(t *testing.T) {
	n := 1<<18*2 + 5 // more than two internal chunks
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i % 2048) // exact in F16
	}
	p := filepath.Join(t.TempDir(), "c.safetensors")
	w, err := Create(p, []TensorSpec{{Name: "x", DType: dtype.F16, Shape: []int64{int64(n)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteFloat32("x", vals); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32(f.Tensors[0], nil)
	if err != nil || !reflect.DeepEqual(got, vals) {
		t.Fatalf("chunked F16 round trip failed: %v", err)
	}
}

func TestCreateRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		specs []TensorSpec
		meta  map[string]string
		want  string
	}{
		{"empty_name", []TensorSpec{{Name: "", DType: dtype.F32}}, nil, "empty name"},
		{"duplicate", []TensorSpec{{Name: "x", DType: dtype.F32}, {Name: "x", DType: dtype.F16}}, nil, `duplicate tensor name "x"`},
		{"metadata_name", []TensorSpec{{Name: "__metadata__", DType: dtype.F32}}, nil, "cannot be used as a tensor name"},
		{"invalid_dtype", []TensorSpec{{Name: "x", DType: dtype.Invalid}}, nil, "invalid dtype"},
		{"negative_dim", []TensorSpec{{Name: "x", DType: dtype.F32, Shape: []int64{-1}}}, nil, "invalid shape"},
		{"f4_odd", []TensorSpec{{Name: "x", DType: dtype.F4, Shape: []int64{3}}}, nil, "not a whole number of bytes"},
		{"overflow", []TensorSpec{{Name: "x", DType: dtype.F64, Shape: []int64{1 << 62}}}, nil, "overflow"},
		{"bad_utf8_name", []TensorSpec{{Name: "a\xff", DType: dtype.F32}}, nil, "not valid UTF-8"},
		{"bad_utf8_metadata", nil, map[string]string{"k": "\xff"}, "not valid UTF-8"},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name+".safetensors")
		w, err := Create(p, tc.specs, tc.meta)
		if err == nil {
			w.Abort()
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p+": ") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	assertDirEntries(t, dir, nil)
	// a missing output folder is created; one that cannot be (a file is in
	// the way) is an error
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	if _, err := Create(filepath.Join(dir, "file/sub/x.safetensors"), nil, nil); err == nil || !strings.Contains(err.Error(), "creating the output folder") {
		t.Errorf("Create under a file: %v", err)
	}
	os.Remove(filepath.Join(dir, "file"))
}

// assertDirEntries checks the exact set of names in dir.
func assertDirEntries(t *testing.T, dir string, want []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(want)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("directory holds %v, want %v", got, want)
	}
}

func TestWriterMisuse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	specs := []TensorSpec{{Name: "a", DType: dtype.F32, Shape: []int64{2}}, {Name: "b", DType: dtype.F32, Shape: []int64{1}}}
	w, err := Create(p, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("b", make([]byte, 4)); err == nil || !strings.Contains(err.Error(), `tensor "b" written out of order: expected "a"`) {
		t.Errorf("out of order: %v", err)
	}
	if err := w.Write("a", make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "got 4 bytes") {
		t.Errorf("wrong length: %v", err)
	}
	if _, err := w.WriteFloat32("a", []float32{1}); err == nil || !strings.Contains(err.Error(), "got 1 values") {
		t.Errorf("wrong count: %v", err)
	}
	if err := w.Write("a", make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil || !strings.Contains(err.Error(), `commit before all tensors were written (1 of 2; next is "b")`) {
		t.Errorf("early commit: %v", err)
	}
	assertDirEntries(t, dir, nil) // failed commit removed the temp file
	if err := w.Write("b", make([]byte, 4)); err == nil {
		t.Error("Write after failed Commit succeeded")
	}
	w.Abort()
	w.Abort()

	// Non-float dtype through WriteFloat32.
	w, err = Create(p, []TensorSpec{{Name: "i", DType: dtype.I32, Shape: []int64{1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteFloat32("i", []float32{1}); err == nil || !strings.Contains(err.Error(), "cannot encode float32 to I32") {
		t.Errorf("WriteFloat32 to I32: %v", err)
	}
	if err := w.Write("i", []byte{1, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("i", []byte{1, 0, 0, 0}); err == nil || !strings.Contains(err.Error(), "already written") {
		t.Errorf("extra write: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Abort() // no-op after Commit
	if _, err := os.Stat(p); err != nil {
		t.Fatal("Abort after Commit removed the file")
	}
	if err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	assertDirEntries(t, dir, []string{"m.safetensors"})
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.safetensors")
	specs := []TensorSpec{{Name: "a", DType: dtype.U8, Shape: []int64{4}}, {Name: "b", DType: dtype.U8, Shape: []int64{4}}}

	// (a) no destination before: nothing after.
	w, err := Create(p, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("a", []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".loratool-*.tmp")); len(tmps) != 1 {
		t.Fatalf("temp files during write: %v", tmps)
	}
	w.Abort()
	assertDirEntries(t, dir, nil)

	// (b) existing destination is untouched by Abort and by a failing WriteFile.
	old := []byte("previous contents")
	if err := os.WriteFile(p, old, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err = Create(p, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Write("a", []byte{1, 2, 3, 4})
	w.Abort()
	err = WriteFile(p, specs, nil, func(s TensorSpec) ([]byte, error) {
		if s.Name == "b" {
			return nil, errors.New("boom")
		}
		return make([]byte, 4), nil
	})
	if err == nil || !strings.Contains(err.Error(), `tensor "b": boom`) {
		t.Fatalf("WriteFile error: %v", err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, old) {
		t.Fatalf("destination changed: %q", got)
	}
	assertDirEntries(t, dir, []string{"d.safetensors"})

	// (c) a successful commit replaces it.
	var progress []int64
	w, err = Create(p, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.SetProgress(func(n int64) { progress = append(progress, n) })
	_ = w.Write("a", []byte{1, 2, 3, 4})
	_ = w.Write("b", []byte{5, 6, 7, 8})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if len(progress) != 2 || progress[1] != st.Size() || progress[1] != w.FileSize() || progress[1]-progress[0] != 4 {
		t.Errorf("progress %v, file size %d, FileSize %d", progress, st.Size(), w.FileSize())
	}
	assertDirEntries(t, dir, []string{"d.safetensors"})
}

const helperEnv = "LORATOOL_SAFETENSORS_HELPER"

// TestHelperProcess is not a real test: run as a child process by
// TestKilledWriter, it starts a write, reports "ready" and blocks.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	CleanupOnSignal()
	specs := []TensorSpec{{Name: "a", DType: dtype.U8, Shape: []int64{8 << 20}}, {Name: "b", DType: dtype.U8, Shape: []int64{4}}}
	w, err := Create(path, specs, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	if err := w.Write("a", make([]byte, 8<<20)); err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(4)
}

func TestKilledWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip()
	}
	tests := []struct {
		name     string
		sig      syscall.Signal
		existing bool
		code     int  // expected exit status, -1 = killed by the signal
		tmpGone  bool // temp file must be removed
	}{
		{"sigint", syscall.SIGINT, false, 130, true},
		{"sigterm_existing_destination", syscall.SIGTERM, true, 143, true},
		{"sighup", syscall.SIGHUP, false, 129, true},
		{"sigquit", syscall.SIGQUIT, true, 131, true},
		{"sigkill", syscall.SIGKILL, false, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out.safetensors")
			if tc.existing {
				if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), helperEnv+"="+p)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(out).ReadString('\n')
			if line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q", line)
			}
			if tmps, _ := filepath.Glob(filepath.Join(dir, ".loratool-*.tmp")); len(tmps) != 1 {
				t.Errorf("temp files while writing: %v", tmps)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("child exit: %v", err)
			}
			if ee.ExitCode() != tc.code {
				t.Errorf("exit code %d, want %d", ee.ExitCode(), tc.code)
			}
			if tc.existing {
				if b, _ := os.ReadFile(p); string(b) != "old" {
					t.Errorf("destination changed: %q", b)
				}
			} else if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("destination exists after %v: %v", tc.sig, err)
			}
			tmps, _ := filepath.Glob(filepath.Join(dir, ".loratool-*.tmp"))
			if tc.tmpGone && len(tmps) != 0 {
				t.Errorf("temp files left after %v: %v", tc.sig, tmps)
			}
			if !tc.tmpGone {
				// SIGKILL leaves a stray temp file: the next writer in
				// the folder removes it and says so
				if len(tmps) != 1 {
					t.Fatalf("temp files after SIGKILL: %v", tmps)
				}
				var noticed []string
				StaleNotice = func(p string, _ int64) { noticed = append(noticed, p) }
				defer func() { StaleNotice = nil }()
				if err := WriteFile(filepath.Join(dir, "next.safetensors"), nil, nil, nil); err != nil {
					t.Fatal(err)
				}
				if left, _ := filepath.Glob(filepath.Join(dir, ".loratool-*.tmp")); len(left) != 0 || len(noticed) != 1 || noticed[0] != tmps[0] {
					t.Errorf("stale temp files left %v, noticed %v", left, noticed)
				}
			}
		})
	}
}
