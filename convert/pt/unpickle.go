package pt

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// refusalError reports a pickle global that is not on the allow-list.
type refusalError struct{ global string }

func (e *refusalError) Error() string {
	return "refusing pickle global " + e.global + " (not on the allow-list)"
}

// storageDTypes maps the typed storage classes of module torch to the
// safetensors dtype name and element size of their elements.
var storageDTypes = map[string]struct {
	dtype string
	size  int64
}{
	"FloatStorage":         {"F32", 4},
	"HalfStorage":          {"F16", 2},
	"BFloat16Storage":      {"BF16", 2},
	"DoubleStorage":        {"F64", 8},
	"LongStorage":          {"I64", 8},
	"IntStorage":           {"I32", 4},
	"ShortStorage":         {"I16", 2},
	"CharStorage":          {"I8", 1},
	"ByteStorage":          {"U8", 1},
	"BoolStorage":          {"BOOL", 1},
	"Float8_e4m3fnStorage": {"F8_E4M3", 1},
	"Float8_e5m2Storage":   {"F8_E5M2", 1},
	"UntypedStorage":       {"U8", 1},
}

// torchDTypes are the torch.<dtype> objects accepted as inert values.
var torchDTypes = map[string]bool{
	"float16": true, "half": true, "float32": true, "float": true,
	"bfloat16": true, "float64": true, "double": true, "int64": true,
	"long": true, "int32": true, "int": true, "int16": true, "short": true,
	"int8": true, "uint8": true, "bool": true, "float8_e4m3fn": true,
	"float8_e5m2": true,
}

// inertGlobals are metadata classes commonly found next to the weights
// (training callbacks, numpy scalars, version strings). They are
// constructed as inert placeholders; their entries end up in Skipped.
var inertGlobals = map[string]bool{
	"pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint": true,
	"lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint": true,
	"numpy.core.multiarray.scalar":                                 true,
	"numpy._core.multiarray.scalar":                                true,
	"numpy.core.multiarray._reconstruct":                           true,
	"numpy._core.multiarray._reconstruct":                          true,
	"numpy.dtype":                                                  true,
	"numpy.ndarray":                                                true,
	"torch.torch_version.TorchVersion":                             true,
}

// typeMarkers are the tensor classes passed to _rebuild_from_type_v2.
var typeMarkers = map[string]bool{
	"torch.Tensor":                 true,
	"torch._tensor.Tensor":         true,
	"torch.nn.parameter.Parameter": true,
}

// printable renders a pickle-supplied name on one line.
func printable(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// checkGlobal applies the allow-list to a global reference.
func checkGlobal(module, name string) error {
	if _, err := resolveGlobal(module, name); err != nil {
		return err
	}
	return nil
}

// resolveGlobal returns the inert Go value standing for an allow-listed
// global, or a refusalError.
func resolveGlobal(module, name string) (any, error) {
	qual := module + "." + name
	switch qual {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
		"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
		"torch._utils._rebuild_from_type_v2":
		return &rebuildFunc{name: name}, nil
	case "collections.OrderedDict":
		return &types.OrderedDictClass{}, nil
	case "_codecs.encode":
		return codecsEncode{}, nil
	case "torch.storage.UntypedStorage":
		return &storageClass{qual: qual, dtype: "U8", size: 1}, nil
	}
	if module == "torch" {
		if d, ok := storageDTypes[name]; ok {
			return &storageClass{qual: qual, dtype: d.dtype, size: d.size}, nil
		}
		if torchDTypes[name] {
			return &dtypeValue{name: qual}, nil
		}
	}
	if inertGlobals[qual] {
		return &inertClass{qual: qual}, nil
	}
	if typeMarkers[qual] {
		return &typeMarker{qual: qual}, nil
	}
	return nil, &refusalError{global: printable(qual)}
}

// storageClass stands for torch.<X>Storage.
type storageClass struct {
	qual  string
	dtype string
	size  int64
}

// dtypeValue stands for torch.float16 and friends.
type dtypeValue struct{ name string }

// typeMarker stands for a tensor class such as torch.nn.Parameter.
type typeMarker struct{ qual string }

// inertClass stands for an allow-listed metadata class; calling it builds
// an inertObject and never runs anything.
type inertClass struct{ qual string }

// Call implements types.Callable.
func (c *inertClass) Call(args ...any) (any, error) { return &inertObject{class: c}, nil }

// PyNew implements types.PyNewable.
func (c *inertClass) PyNew(args ...any) (any, error) { return &inertObject{class: c}, nil }

// inertObject is an instance of an inertClass; all state is discarded.
type inertObject struct{ class *inertClass }

func (o *inertObject) PySetState(any) error           { return nil }
func (o *inertObject) PyDictSet(any, any) error       { return nil }
func (o *inertObject) PySetAttr(string, any) error    { return nil }
func (o *inertObject) Set(any, any)                   {}
func (o *inertObject) Append(any)                     {}
func (o *inertObject) Call(args ...any) (any, error)  { return o, nil }
func (o *inertObject) PyNew(args ...any) (any, error) { return &inertObject{class: o.class}, nil }

// codecsEncode implements _codecs.encode(str, "latin1"), which protocol-2
// pickles use to carry bytes objects.
type codecsEncode struct{}

// Call implements types.Callable.
func (codecsEncode) Call(args ...any) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, errors.New("_codecs.encode: wrong number of arguments")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, errors.New("_codecs.encode: argument is not a string")
	}
	enc := "utf-8"
	if len(args) == 2 {
		if enc, ok = args[1].(string); !ok {
			return nil, errors.New("_codecs.encode: encoding is not a string")
		}
	}
	switch strings.ToLower(strings.ReplaceAll(enc, "-", "")) {
	case "latin1", "latin", "iso88591":
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, errors.New("_codecs.encode: character outside latin-1")
			}
			out = append(out, byte(r))
		}
		return out, nil
	case "utf8":
		return []byte(s), nil
	}
	return nil, fmt.Errorf("_codecs.encode: unsupported encoding %s", printable(enc))
}

// storageRef is a storage named by a persistent id.
type storageRef struct {
	key   string
	dtype string
	size  int64 // element size in bytes
	numel int64 // declared number of elements
}

// tensorRef is a tensor rebuilt from the pickle; no data is read.
type tensorRef struct {
	st     *storageRef
	offset int64
	shape  []int64
	stride []int64
}

// loader holds the state of one unpickling run.
type loader struct {
	storages map[string]*storageRef
	tensors  int
	legacy   bool // persistent ids carry a 6th view_metadata element
}

// rebuildFunc stands for one of the torch._utils rebuild functions.
type rebuildFunc struct {
	name string
	ld   *loader
}

// Call implements types.Callable.
func (f *rebuildFunc) Call(args ...any) (any, error) {
	switch f.name {
	case "_rebuild_tensor", "_rebuild_tensor_v2":
		if len(args) < 4 || len(args) > 7 || (f.name == "_rebuild_tensor" && len(args) != 4) {
			return nil, fmt.Errorf("%s: %d arguments", f.name, len(args))
		}
		return f.ld.rebuildTensor(f.name, args[0], args[1], args[2], args[3])
	case "_rebuild_parameter", "_rebuild_parameter_with_state":
		if len(args) < 1 {
			return nil, fmt.Errorf("%s: no arguments", f.name)
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%s: argument is a %s, not a tensor", f.name, describe(args[0]))
		}
		return t, nil
	case "_rebuild_from_type_v2":
		if len(args) != 4 {
			return nil, fmt.Errorf("%s: %d arguments", f.name, len(args))
		}
		fn, ok := args[0].(*rebuildFunc)
		if !ok || fn.name == "_rebuild_from_type_v2" {
			return nil, fmt.Errorf("%s: inner function is a %s", f.name, describe(args[0]))
		}
		if _, ok := args[1].(*typeMarker); !ok {
			return nil, fmt.Errorf("%s: tensor type is a %s", f.name, describe(args[1]))
		}
		inner, ok := seq(args[2])
		if !ok {
			return nil, fmt.Errorf("%s: arguments are a %s", f.name, describe(args[2]))
		}
		return fn.Call(inner...)
	}
	return nil, fmt.Errorf("unknown rebuild function %s", f.name)
}

func (ld *loader) rebuildTensor(fn string, st, off, size, stride any) (any, error) {
	s, ok := st.(*storageRef)
	if !ok {
		return nil, fmt.Errorf("%s: storage argument is a %s", fn, describe(st))
	}
	o, ok := toInt64(off)
	if !ok || o < 0 {
		return nil, fmt.Errorf("%s: bad storage offset %s", fn, describe(off))
	}
	shape, ok := intSeq(size)
	if !ok {
		return nil, fmt.Errorf("%s: bad size %s", fn, describe(size))
	}
	strides, ok := intSeq(stride)
	if !ok || len(strides) != len(shape) {
		return nil, fmt.Errorf("%s: bad stride %s for %d dimensions", fn, describe(stride), len(shape))
	}
	for i := range shape {
		if shape[i] < 0 || strides[i] < 0 {
			return nil, fmt.Errorf("%s: negative size or stride", fn)
		}
	}
	ld.tensors++
	if ld.tensors > maxTensors {
		return nil, fmt.Errorf("more than %d tensors", maxTensors)
	}
	return &tensorRef{st: s, offset: o, shape: shape, stride: strides}, nil
}

// persistentLoad resolves ('storage', storage_type, key, location, numel)
// persistent ids (plus a trailing view_metadata in the legacy format).
func (ld *loader) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() < 1 {
		return nil, fmt.Errorf("unsupported persistent id %s", describe(pid))
	}
	tag, _ := t.Get(0).(string)
	if tag != "storage" {
		return nil, fmt.Errorf("unsupported persistent id of kind %s", printable(tag))
	}
	want := 5
	if ld.legacy {
		want = 6
	}
	if t.Len() != want {
		return nil, fmt.Errorf("storage persistent id has %d elements, want %d", t.Len(), want)
	}
	cls, ok := t.Get(1).(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage persistent id names a %s, not a storage class", describe(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("storage key is a %s", describe(t.Get(2)))
	}
	numel, ok := toInt64(t.Get(4))
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %s", printable(key), describe(t.Get(4)))
	}
	if ld.legacy && t.Get(5) != nil {
		return nil, fmt.Errorf("storage %s: legacy storage views are not supported", printable(key))
	}
	if prev, ok := ld.storages[key]; ok {
		if prev.dtype != cls.dtype || prev.numel != numel {
			return nil, fmt.Errorf("storage %s declared twice with different types or sizes", printable(key))
		}
		return prev, nil
	}
	s := &storageRef{key: key, dtype: cls.dtype, size: cls.size, numel: numel}
	ld.storages[key] = s
	return s, nil
}

// unpickle runs gopickle's unpickler over a pre-scanned stream with the
// allow-list and persistent-id hooks. It never panics.
func (ld *loader) unpickle(data []byte) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("malformed pickle (%v)", r)
		}
	}()
	u := pickle.NewUnpickler(strings.NewReader(string(data)))
	u.FindClass = func(module, name string) (any, error) {
		v, err := resolveGlobal(module, name)
		if f, ok := v.(*rebuildFunc); ok {
			f.ld = ld
		}
		return v, err
	}
	u.PersistentLoad = ld.persistentLoad
	return u.Load()
}

// seq returns the items of a tuple or list.
func seq(v any) ([]any, bool) {
	switch x := v.(type) {
	case *types.Tuple:
		return []any(*x), true
	case *types.List:
		return []any(*x), true
	}
	return nil, false
}

func intSeq(v any) ([]int64, bool) {
	items, ok := seq(v)
	if !ok || len(items) > 64 {
		return nil, false
	}
	out := make([]int64, len(items))
	for i, it := range items {
		if out[i], ok = toInt64(it); !ok {
			return nil, false
		}
	}
	return out, true
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	}
	return 0, false
}

// describe names the kind of a pickled value for messages and Skipped.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		if math.IsNaN(x) {
			return "float"
		}
		return "float"
	case string:
		return "str"
	case []byte, *types.ByteArray:
		return "bytes"
	case *types.Tuple:
		return fmt.Sprintf("tuple of %d items", x.Len())
	case *types.List:
		return fmt.Sprintf("list of %d items", x.Len())
	case *types.Dict:
		return fmt.Sprintf("dict of %d entries", x.Len())
	case *types.OrderedDict:
		return fmt.Sprintf("OrderedDict of %d entries", x.Len())
	case *types.Set, *types.FrozenSet:
		return "set"
	case *tensorRef:
		return "tensor"
	case *storageRef:
		return "storage"
	case *storageClass:
		return x.qual + " class"
	case *dtypeValue:
		return "dtype " + x.name
	case *typeMarker:
		return x.qual + " class"
	case *inertClass:
		return x.qual + " class"
	case *inertObject:
		return x.class.qual + " object"
	case *rebuildFunc:
		return "function torch._utils." + x.name
	case *types.OrderedDictClass:
		return "class collections.OrderedDict"
	}
	return fmt.Sprintf("%T", v)
}
