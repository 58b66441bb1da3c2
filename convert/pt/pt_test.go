package pt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// Independently known bit patterns.
const (
	f32One, f32Two, f32Three = 0x3F800000, 0x40000000, 0x40400000
	f32Four, f32Five, f32Six = 0x40800000, 0x40A00000, 0x40C00000
	f16Zero, f16One, f16Two  = 0x0000, 0x3C00, 0x4000
	f16TwoHalf, f16MinusTwo  = 0x4100, 0xC000
	bf16One, bf16MinusTwo    = 0x3F80, 0xC000
	bf16Half                 = 0x3F00
)

// entry writes one key/value pair of a dict.
type entry struct {
	key   string
	value func(w *pw)
}

func tensorVal(class, key string, numel, offset int64, shape, stride []int64) func(w *pw) {
	return func(w *pw) { w.tensor(class, key, numel, offset, shape, stride) }
}

// dictPickle writes a protocol-2 pickle of a dict with the given entries.
func dictPickle(entries ...entry) []byte {
	w := &pw{}
	w.proto(2).op('}')
	writeItems(w, entries)
	return w.stop().Bytes()
}

func writeItems(w *pw, entries []entry) {
	w.mark()
	for _, e := range entries {
		w.str(e.key)
		e.value(w)
	}
	w.op('u')
}

func ckptZip(t *testing.T, pkl []byte, storages map[string][]byte) string {
	t.Helper()
	es := []zipEntry{{name: "archive/data.pkl", data: pkl}}
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	for _, k := range keys {
		es = append(es, zipEntry{name: "archive/data/" + k, data: storages[k]})
	}
	es = append(es, zipEntry{name: "archive/version", data: []byte("3\n")})
	return writeZip(t, es...)
}

type wantTensor struct {
	name  string
	dtype string
	shape []int64
	data  []byte
}

func TestOpenRead(t *testing.T) {
	f32x6 := le(4, f32One, f32Two, f32Three, f32Four, f32Five, f32Six)
	cases := []struct {
		name     string
		pkl      []byte
		storages map[string][]byte
		want     []wantTensor
		skipped  []string
	}{
		{
			name:     "f32 2x3",
			pkl:      dictPickle(entry{"w", tensorVal("FloatStorage", "0", 6, 0, []int64{2, 3}, []int64{3, 1})}),
			storages: map[string][]byte{"0": f32x6},
			want:     []wantTensor{{"w", "F32", []int64{2, 3}, f32x6}},
		},
		{
			name:     "f16 with storage offset",
			pkl:      dictPickle(entry{"h", tensorVal("HalfStorage", "0", 5, 2, []int64{2}, []int64{1})}),
			storages: map[string][]byte{"0": le(2, f16Zero, f16One, f16Two, f16TwoHalf, f16MinusTwo)},
			want:     []wantTensor{{"h", "F16", []int64{2}, le(2, f16Two, f16TwoHalf)}},
		},
		{
			name:     "transposed view",
			pkl:      dictPickle(entry{"wt", tensorVal("FloatStorage", "0", 6, 0, []int64{3, 2}, []int64{1, 3})}),
			storages: map[string][]byte{"0": f32x6},
			want: []wantTensor{{"wt", "F32", []int64{3, 2},
				le(4, f32One, f32Four, f32Two, f32Five, f32Three, f32Six)}},
		},
		{
			name: "strided column with offset",
			// column 1 of the 2x3 matrix: elements 1 and 4.
			pkl:      dictPickle(entry{"col", tensorVal("FloatStorage", "0", 6, 1, []int64{2}, []int64{3})}),
			storages: map[string][]byte{"0": f32x6},
			want:     []wantTensor{{"col", "F32", []int64{2}, le(4, f32Two, f32Five)}},
		},
		{
			name:     "bf16",
			pkl:      dictPickle(entry{"b", tensorVal("BFloat16Storage", "7", 3, 0, []int64{3}, []int64{1})}),
			storages: map[string][]byte{"7": le(2, bf16One, bf16MinusTwo, bf16Half)},
			want:     []wantTensor{{"b", "BF16", []int64{3}, le(2, bf16One, bf16MinusTwo, bf16Half)}},
		},
		{
			name:     "int64",
			pkl:      dictPickle(entry{"step_ids", tensorVal("LongStorage", "0", 2, 0, []int64{2}, []int64{1})}),
			storages: map[string][]byte{"0": le(8, 0xFFFFFFFFFFFFFFFF, 1<<40)},
			want:     []wantTensor{{"step_ids", "I64", []int64{2}, le(8, 0xFFFFFFFFFFFFFFFF, 1<<40)}},
		},
		{
			name: "bool, u8 and f8 scalars",
			pkl: dictPickle(
				entry{"flag", tensorVal("BoolStorage", "0", 1, 0, nil, nil)},
				entry{"u", tensorVal("ByteStorage", "1", 1, 0, nil, nil)},
				entry{"f8", tensorVal("Float8_e4m3fnStorage", "2", 1, 0, nil, nil)},
				entry{"f8b", tensorVal("Float8_e5m2Storage", "3", 1, 0, nil, nil)},
			),
			storages: map[string][]byte{"0": {1}, "1": {200}, "2": {0x38}, "3": {0x3C}},
			want: []wantTensor{
				{"flag", "BOOL", []int64{}, []byte{1}},
				{"u", "U8", []int64{}, []byte{200}},
				{"f8", "F8_E4M3", []int64{}, []byte{0x38}},
				{"f8b", "F8_E5M2", []int64{}, []byte{0x3C}},
			},
		},
		{
			name: "rebuild_parameter wrapper",
			pkl: dictPickle(entry{"p", func(w *pw) {
				w.global("torch._utils", "_rebuild_parameter").mark()
				w.tensor("HalfStorage", "0", 2, 0, []int64{2}, []int64{1})
				w.op(0x88).orderedDict().op('t', 'R')
			}}),
			storages: map[string][]byte{"0": le(2, f16One, f16MinusTwo)},
			want:     []wantTensor{{"p", "F16", []int64{2}, le(2, f16One, f16MinusTwo)}},
		},
		{
			name: "rebuild_from_type_v2 wrapper",
			pkl: dictPickle(entry{"q", func(w *pw) {
				w.global("torch._utils", "_rebuild_from_type_v2").mark()
				w.global("torch._utils", "_rebuild_tensor_v2")
				w.global("torch.nn.parameter", "Parameter")
				w.mark().storage("HalfStorage", "0", 1).int(0).tuple(1).tuple(1).op(0x89).orderedDict().op('t')
				w.op('}')
				w.op('t', 'R')
			}}),
			storages: map[string][]byte{"0": le(2, f16TwoHalf)},
			want:     []wantTensor{{"q", "F16", []int64{1}, le(2, f16TwoHalf)}},
		},
		{
			name: "state_dict wrapper and global_step",
			pkl: dictPickle(
				entry{"state_dict", func(w *pw) {
					w.op('}')
					writeItems(w, []entry{
						{"a.weight", tensorVal("FloatStorage", "0", 6, 0, []int64{2, 3}, []int64{3, 1})},
						{"a.bias", tensorVal("FloatStorage", "0", 6, 4, []int64{2}, []int64{1})},
					})
				}},
				entry{"global_step", func(w *pw) { w.int(5) }},
				entry{"epoch", func(w *pw) { w.int(1) }},
			),
			storages: map[string][]byte{"0": f32x6},
			want: []wantTensor{
				{"a.weight", "F32", []int64{2, 3}, f32x6},
				{"a.bias", "F32", []int64{2}, le(4, f32Five, f32Six)},
			},
			skipped: []string{"global_step: int (not a tensor)", "epoch: int (not a tensor)"},
		},
		{
			name: "OrderedDict root with nested dict",
			pkl: func() []byte {
				w := &pw{}
				w.proto(2).orderedDict()
				writeItems(w, []entry{
					{"z", tensorVal("IntStorage", "0", 2, 0, []int64{2}, []int64{1})},
					{"lora", func(w *pw) {
						w.op('}')
						writeItems(w, []entry{{"up", tensorVal("ShortStorage", "1", 1, 0, []int64{1}, []int64{1})}})
					}},
					{"name", func(w *pw) { w.str("hello") }},
				})
				return w.stop().Bytes()
			}(),
			storages: map[string][]byte{"0": le(4, 7, 0xFFFFFFFF), "1": le(2, 0x1234)},
			want: []wantTensor{
				{"z", "I32", []int64{2}, le(4, 7, 0xFFFFFFFF)},
				{"lora.up", "I16", []int64{1}, le(2, 0x1234)},
			},
			skipped: []string{"name: str (not a tensor)"},
		},
		{
			name: "inert metadata: numpy scalar, codecs bytes, ModelCheckpoint, dtype",
			pkl: dictPickle(
				entry{"w", tensorVal("CharStorage", "0", 1, 0, []int64{1}, []int64{1})},
				entry{"best", func(w *pw) {
					w.global("numpy.core.multiarray", "scalar")
					w.global("numpy", "dtype").mark().str("f8").op(0x89, 0x88, 't', 'R')
					w.mark().int(3).str("<").op('N', 'N', 'N').int(-1).int(-1).int(0).op('t', 'b')
					w.global("_codecs", "encode").mark().str("\u00000\u00e0?").str("latin1").op('t', 'R')
					w.op(0x86, 'R')
				}},
				entry{"callbacks", func(w *pw) {
					w.op('}').mark()
					w.global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
					w.op('}').op('u')
				}},
				entry{"dtype", func(w *pw) { w.global("torch", "float16") }},
			),
			storages: map[string][]byte{"0": {0xFE}},
			want:     []wantTensor{{"w", "I8", []int64{1}, []byte{0xFE}}},
			skipped: []string{
				"best: numpy.core.multiarray.scalar object (not a tensor)",
				"callbacks: dict of 1 entries (no tensors)",
				"dtype: dtype torch.float16 (not a tensor)",
			},
		},
		{
			name: "two tensors sharing a storage, protocol-4 STACK_GLOBAL",
			pkl: func() []byte {
				w := &pw{}
				w.proto(4).op('}').mark()
				for i, name := range []string{"first", "second"} {
					w.shortStr(name)
					w.shortStr("torch._utils").shortStr("_rebuild_tensor_v2").op(0x93)
					w.mark().mark().shortStr("storage").shortStr("torch").shortStr("HalfStorage").op(0x93)
					w.shortStr("0").shortStr("cpu").int(4).op('t', 'Q')
					w.int(int64(2*i)).tuple(2).tuple(1).op(0x89).orderedDict().op('t', 'R')
				}
				return w.op('u').stop().Bytes()
			}(),
			storages: map[string][]byte{"0": le(2, f16One, f16Two, f16TwoHalf, f16MinusTwo)},
			want: []wantTensor{
				{"first", "F16", []int64{2}, le(2, f16One, f16Two)},
				{"second", "F16", []int64{2}, le(2, f16TwoHalf, f16MinusTwo)},
			},
		},
		{
			name:     "empty tensor",
			pkl:      dictPickle(entry{"e", tensorVal("FloatStorage", "0", 0, 0, []int64{0, 4}, []int64{4, 1})}),
			storages: map[string][]byte{"0": {}},
			want:     []wantTensor{{"e", "F32", []int64{0, 4}, []byte{}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ckptZip(t, tc.pkl, tc.storages)
			c, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkTensors(t, c, tc.want)
			if !reflect.DeepEqual(c.Skipped, tc.skipped) {
				t.Errorf("Skipped = %q, want %q", c.Skipped, tc.skipped)
			}
		})
	}
}

func checkTensors(t *testing.T, c *Checkpoint, want []wantTensor) {
	t.Helper()
	if len(c.Tensors) != len(want) {
		t.Fatalf("got %d tensors, want %d: %+v", len(c.Tensors), len(want), c.Tensors)
	}
	for i, w := range want {
		got := c.Tensors[i]
		shape := got.Shape
		if shape == nil {
			shape = []int64{}
		}
		if got.Name != w.name || got.DType != w.dtype || !reflect.DeepEqual(shape, w.shape) {
			t.Errorf("tensor %d = %s %s %v, want %s %s %v", i, got.Name, got.DType, got.Shape, w.name, w.dtype, w.shape)
		}
		b, err := c.Read(got)
		if err != nil {
			t.Errorf("Read(%s): %v", got.Name, err)
			continue
		}
		if !bytes.Equal(b, w.data) {
			t.Errorf("Read(%s) = %x, want %x", got.Name, b, w.data)
		}
		if got.NumBytes() != int64(len(w.data)) {
			t.Errorf("NumBytes(%s) = %d, want %d", got.Name, got.NumBytes(), len(w.data))
		}
	}
}

func TestBigEndianByteorder(t *testing.T) {
	pkl := dictPickle(entry{"x", tensorVal("ShortStorage", "0", 2, 0, []int64{2}, []int64{1})})
	path := writeZip(t,
		zipEntry{name: "m/data.pkl", data: pkl},
		zipEntry{name: "m/byteorder", data: []byte("big")},
		zipEntry{name: "m/data/0", data: []byte{0x12, 0x34, 0xAB, 0xCD}},
	)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkTensors(t, c, []wantTensor{{"x", "I16", []int64{2}, []byte{0x34, 0x12, 0xCD, 0xAB}}})
}

func TestDeflatedStorage(t *testing.T) {
	pkl := dictPickle(entry{"wt", tensorVal("FloatStorage", "0", 6, 0, []int64{3, 2}, []int64{1, 3})})
	path := writeZip(t,
		zipEntry{name: "a/data.pkl", data: pkl, deflate: true},
		zipEntry{name: "a/data/0", data: le(4, f32One, f32Two, f32Three, f32Four, f32Five, f32Six), deflate: true},
	)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkTensors(t, c, []wantTensor{{"wt", "F32", []int64{3, 2},
		le(4, f32One, f32Four, f32Two, f32Five, f32Three, f32Six)}})
}

// legacyFile builds a legacy (pre-1.6) torch.save stream by hand.
func legacyFile(t *testing.T, littleEndian bool, main []byte, keys []string, storages [][]byte, counts []int64) string {
	t.Helper()
	var b bytes.Buffer
	// Magic number 0x1950a86a20f9469cfc6c as LONG1 with 10 bytes.
	b.Write([]byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'})
	b.Write((&pw{}).proto(2).int(1001).stop().Bytes())
	sys := &pw{}
	sys.proto(2).op('}').mark().str("protocol_version").int(1001).str("little_endian")
	if littleEndian {
		sys.op(0x88)
	} else {
		sys.op(0x89)
	}
	sys.op('u').stop()
	b.Write(sys.Bytes())
	b.Write(main)
	kw := &pw{}
	kw.proto(2).op(']').mark()
	for _, k := range keys {
		kw.str(k)
	}
	b.Write(kw.op('e').stop().Bytes())
	for i, s := range storages {
		binary.Write(&b, binary.LittleEndian, counts[i])
		b.Write(s)
	}
	return writeFile(t, "old.pth", b.Bytes())
}

// legacyTensor is _rebuild_tensor_v2 with a 6-element legacy persistent id.
func legacyTensor(w *pw, class, key string, numel, offset int64, shape, stride []int64) {
	w.global("torch._utils", "_rebuild_tensor_v2").mark()
	w.mark().str("storage").global("torch", class).str(key).str("cpu").int(numel).op('N', 't', 'Q')
	w.int(offset).tuple(shape...).tuple(stride...).op(0x89).orderedDict().op('t', 'R')
}

func TestLegacyFormat(t *testing.T) {
	main := &pw{}
	main.proto(2).op('}').mark()
	main.str("a")
	legacyTensor(main, "HalfStorage", "140001", 3, 1, []int64{2}, []int64{1})
	main.str("b")
	legacyTensor(main, "FloatStorage", "140002", 6, 0, []int64{3, 2}, []int64{1, 3})
	main.str("step").int(12)
	main.op('u').stop()
	path := legacyFile(t, true, main.Bytes(), []string{"140001", "140002"},
		[][]byte{le(2, f16One, f16Two, f16TwoHalf), le(4, f32One, f32Two, f32Three, f32Four, f32Five, f32Six)},
		[]int64{3, 6})
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkTensors(t, c, []wantTensor{
		{"a", "F16", []int64{2}, le(2, f16Two, f16TwoHalf)},
		{"b", "F32", []int64{3, 2}, le(4, f32One, f32Four, f32Two, f32Five, f32Three, f32Six)},
	})
	if want := []string{"step: int (not a tensor)"}; !reflect.DeepEqual(c.Skipped, want) {
		t.Errorf("Skipped = %q, want %q", c.Skipped, want)
	}
}

func TestRefusesMaliciousGlobals(t *testing.T) {
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("pwned-%d", rand.Int63()))
	defer os.Remove(marker)
	cases := []struct {
		global string
		pkl    []byte
	}{
		{"os.system", (&pw{}).proto(2).global("os", "system").mark().str("touch "+marker).op('t', 'R').stop().Bytes()},
		{"posix.system", (&pw{}).proto(4).shortStr("posix").shortStr("system").op(0x93).shortStr("touch "+marker).op(0x85, 'R').stop().Bytes()},
		{"builtins.eval", (&pw{}).proto(2).global("builtins", "eval").mark().str("1").op('t', 'R').stop().Bytes()},
		{"__builtin__.exec", (&pw{}).proto(2).global("__builtin__", "exec").mark().str("1").op('t', 'R').stop().Bytes()},
		{"subprocess.Popen", (&pw{}).proto(2).global("subprocess", "Popen").mark().str("touch").op('t', 'R').stop().Bytes()},
		{"copy_reg._reconstructor", (&pw{}).proto(2).global("copy_reg", "_reconstructor").op('N').stop().Bytes()},
		{"__builtin__.object", (&pw{}).proto(4).shortStr("__builtin__").shortStr("object").op(0x93).stop().Bytes()},
		{"torch.load", (&pw{}).proto(2).op('}').mark().str("x").global("torch", "load").op('u').stop().Bytes()},
		{"os.system", (&pw{}).proto(0).op('(').op('i').op([]byte("os\nsystem\n")...).stop().Bytes()},
		{"torch._utils._rebuild_device_tensor_from_numpy", (&pw{}).proto(2).global("torch._utils", "_rebuild_device_tensor_from_numpy").stop().Bytes()},
	}
	for _, tc := range cases {
		t.Run(tc.global, func(t *testing.T) {
			path := ckptZip(t, tc.pkl, nil)
			_, err := Open(path)
			want := path + ": refusing pickle global " + tc.global + " (not on the allow-list)"
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Fatalf("%s exists: code was executed", marker)
			}
		})
	}
	// The refusal also covers the main pickle of a legacy file.
	path := legacyFile(t, true, (&pw{}).proto(2).global("os", "system").mark().str("touch "+marker).op('t', 'R').stop().Bytes(), nil, nil, nil)
	if _, err := Open(path); err == nil || err.Error() != path+": refusing pickle global os.system (not on the allow-list)" {
		t.Fatalf("legacy: err = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	valid := dictPickle(entry{"w", tensorVal("FloatStorage", "0", 2, 0, []int64{2}, []int64{1})})
	cases := []struct {
		name string
		path func(t *testing.T) string
		want string // substring of the error
	}{
		{"storage declares more than the entry holds", func(t *testing.T) string {
			pkl := dictPickle(entry{"w", tensorVal("FloatStorage", "0", 1<<40, 0, []int64{1 << 40}, []int64{1})})
			return ckptZip(t, pkl, map[string][]byte{"0": le(4, f32One, f32Two)})
		}, "declares 1099511627776 elements of 4 bytes but the file holds only 8 bytes"},
		{"offset beyond the storage", func(t *testing.T) string {
			pkl := dictPickle(entry{"w", tensorVal("FloatStorage", "0", 2, 1, []int64{2}, []int64{1})})
			return ckptZip(t, pkl, map[string][]byte{"0": le(4, f32One, f32Two)})
		}, "beyond its storage 0 of 2 elements"},
		{"huge stride", func(t *testing.T) string {
			pkl := dictPickle(entry{"w", tensorVal("FloatStorage", "0", 2, 0, []int64{3, 2}, []int64{1 << 62, 1})})
			return ckptZip(t, pkl, map[string][]byte{"0": le(4, f32One, f32Two)})
		}, "strides overflow"},
		{"broadcast larger than storage", func(t *testing.T) string {
			pkl := dictPickle(entry{"w", tensorVal("FloatStorage", "0", 2, 0, []int64{1 << 30}, []int64{0})})
			return ckptZip(t, pkl, map[string][]byte{"0": le(4, f32One, f32Two)})
		}, "overlapping or broadcast strides"},
		{"missing storage entry", func(t *testing.T) string {
			return ckptZip(t, valid, nil)
		}, "storage 0 is missing from the archive"},
		{"truncated zip", func(t *testing.T) string {
			b, _ := os.ReadFile(ckptZip(t, valid, map[string][]byte{"0": le(4, f32One, f32Two)}))
			return writeFile(t, "cut.ckpt", b[:len(b)-30])
		}, "corrupt or truncated zip archive"},
		{"zip without data.pkl", func(t *testing.T) string {
			return writeZip(t, zipEntry{name: "x/readme.txt", data: []byte("hi")})
		}, "no <name>/data.pkl"},
		{"TorchScript archive", func(t *testing.T) string {
			return writeZip(t, zipEntry{name: "m/data.pkl", data: valid}, zipEntry{name: "m/code/__torch__.py", data: []byte("x")})
		}, "TorchScript archive"},
		{"top-level list", func(t *testing.T) string {
			return ckptZip(t, (&pw{}).proto(2).op(']').stop().Bytes(), nil)
		}, "top-level object is a list of 0 items, not a dict of tensors"},
		{"unknown opcode", func(t *testing.T) string {
			return ckptZip(t, []byte{0x80, 0x02, 0xff, '.'}, nil)
		}, "unknown pickle opcode 0xff"},
		{"LONG1 of zero bytes", func(t *testing.T) string {
			return ckptZip(t, []byte{0x80, 0x02, 0x8a, 0x00, '.'}, nil)
		}, "unsupported pickle long of 0 bytes"},
		{"odd SETITEMS", func(t *testing.T) string {
			return ckptZip(t, (&pw{}).proto(2).op('}').mark().str("k").op('u').stop().Bytes(), nil)
		}, "SETITEMS with an odd number"},
		{"huge BINUNICODE length", func(t *testing.T) string {
			return ckptZip(t, []byte{0x80, 0x02, 'X', 0xff, 0xff, 0xff, 0xff, 'a', '.'}, nil)
		}, "exceeds the pickle size limit"},
		{"stack underflow", func(t *testing.T) string {
			return ckptZip(t, []byte{0x80, 0x02, 'R', '.'}, nil)
		}, "needs 2 stack values"},
		{"unhashable OrderedDict key", func(t *testing.T) string {
			w := (&pw{}).proto(2).orderedDict().mark()
			w.op('C', 1, 'a').int(3).op('u').stop()
			return ckptZip(t, w.Bytes(), nil)
		}, "malformed pickle"},
		{"truncated pickle", func(t *testing.T) string {
			return ckptZip(t, valid[:len(valid)-5], map[string][]byte{"0": le(4, f32One, f32Two)})
		}, "pickle truncated"},
		{"unknown persistent id", func(t *testing.T) string {
			w := (&pw{}).proto(2).mark().str("module").op('t', 'Q').stop()
			return ckptZip(t, w.Bytes(), nil)
		}, "unsupported persistent id of kind module"},
		{"empty file", func(t *testing.T) string { return writeFile(t, "e.pt", nil) }, "empty file"},
		{"safetensors file", func(t *testing.T) string {
			return writeFile(t, "x.pt", append(le(8, 2), []byte("{}")...))
		}, "looks like a safetensors file"},
		{"pickle without magic", func(t *testing.T) string {
			return writeFile(t, "p.pt", (&pw{}).proto(2).int(7).stop().Bytes())
		}, "without the torch.save magic number"},
		{"legacy storage beyond end of file", func(t *testing.T) string {
			main := &pw{}
			main.proto(2).op('}').mark().str("a")
			legacyTensor(main, "FloatStorage", "1", 2, 0, []int64{2}, []int64{1})
			main.op('u').stop()
			return legacyFile(t, true, main.Bytes(), []string{"1"}, [][]byte{le(4, f32One)}, []int64{1 << 40})
		}, "beyond the end of the file"},
		{"not found", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.pt") }, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c, err := Open(path)
			runtime.ReadMemStats(&after)
			if err == nil {
				c.Close()
				t.Fatalf("Open succeeded, want error containing %q", tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("err = %q, want one line starting with the path and containing %q", msg, tc.want)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
				t.Errorf("Open allocated %d bytes", d)
			}
		})
	}
}

// sharedDicts builds d0 = {"w": tensor}, d(i+1) = {"a": d(i), "b": d(i)}
// and returns a checkpoint whose root is d(levels).
func sharedDicts(t *testing.T, levels int) string {
	w := (&pw{}).proto(2).op('}', 'q', 0).str("w")
	w.tensor("FloatStorage", "0", 2, 0, []int64{2}, []int64{1}).op('s')
	for i := 0; i < levels; i++ {
		w.op('0', '}').str("a").op('h', byte(i)).op('s').str("b").op('h', byte(i)).op('s', 'q', byte(i+1))
	}
	return ckptZip(t, w.stop().Bytes(), map[string][]byte{"0": le(4, f32One, f32Two)})
}

func TestSharedDictsVisitedOnce(t *testing.T) {
	c, err := Open(sharedDicts(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkTensors(t, c, []wantTensor{{"a.a.w", "F32", []int64{2}, le(4, f32One, f32Two)}})
	want := []string{
		"a.b: dict already listed under another name (shared or recursive reference)",
		"b: dict already listed under another name (shared or recursive reference)",
	}
	if !reflect.DeepEqual(c.Skipped, want) {
		t.Errorf("Skipped = %q, want %q", c.Skipped, want)
	}
	// 2^200 paths: must finish at once, visiting each dict once.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c2, err := Open(sharedDicts(t, 200))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Errorf("Open allocated %d bytes", d)
	}
}

func TestReadRejectsForeignTensor(t *testing.T) {
	pkl := dictPickle(entry{"w", tensorVal("FloatStorage", "0", 2, 0, []int64{2}, []int64{1})})
	c, err := Open(ckptZip(t, pkl, map[string][]byte{"0": le(4, f32One, f32Two)}))
	if err != nil {
		t.Fatal(err)
	}
	bad := c.Tensors[0]
	bad.Shape = []int64{1 << 40}
	bad.stride = []int64{1}
	if _, err := c.Read(bad); err == nil || !strings.Contains(err.Error(), "beyond its storage") {
		t.Errorf("Read(forged) err = %v", err)
	}
	if _, err := c.Read(Tensor{Name: "x"}); err == nil {
		t.Error("Read(zero Tensor) succeeded")
	}
	c.Close()
	if _, err := c.Read(c.Tensors[0]); err == nil {
		t.Error("Read after Close succeeded")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// FuzzOpen checks that arbitrary bytes never make Open or Read panic.
func FuzzOpen(f *testing.F) {
	f.Add(dictPickle(entry{"w", tensorVal("FloatStorage", "0", 6, 0, []int64{3, 2}, []int64{1, 3})}), true)
	f.Add((&pw{}).proto(4).shortStr("torch").shortStr("HalfStorage").op(0x93).stop().Bytes(), false)
	f.Fuzz(func(t *testing.T, pkl []byte, asZip bool) {
		var path string
		if asZip {
			path = ckptZip(t, pkl, map[string][]byte{"0": le(4, 1, 2, 3, 4, 5, 6)})
		} else {
			path = writeFile(t, "f.pt", pkl)
		}
		c, err := Open(path)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, ten := range c.Tensors {
			c.Read(ten)
		}
		c.Close()
	})
}
