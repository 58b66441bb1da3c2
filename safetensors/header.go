// Package safetensors is loratool's strict reader and streaming atomic
// writer for the safetensors format.
//
// Why not github.com/nlpodyssey/safetensors: it cannot open any file that
// contains an FP8 tensor (F8_E4M3/F8_E5M2 are unknown to it, and the error is
// raised while decoding the header, so the whole file is refused), it lacks
// F8_E8M0, the FNUZ types, F4, F6 and C64, it silently accepts headers that
// are not valid UTF-8 and duplicate keys (last one wins), and it needs the
// whole file as one []byte even to read the header. It is used only in this
// package's tests, as an independent cross-check of the files we write for the
// dtypes it knows.
//
// The reader (ParseHeader, ReadHeader, Open) validates everything the Rust
// reference implementation validates and more: see ParseHeader. Tensor data is
// memory-mapped read-only; if another process truncates the file while it is
// mapped, touching the missing pages raises SIGBUS (a fatal fault in Go unless
// debug.SetPanicOnFault is enabled in the reading goroutine).
//
// The writer (Create, WriteFile) produces byte-identical output for identical
// input in the canonical order of the Rust crate (dtype descending, then
// name), writes to a temporary file in the destination directory and renames
// it over the destination on Commit, so a partial destination file never
// exists. Only SIGKILL or a power loss can leave a stray ".<name>.tmp-*" file
// behind; SIGINT/SIGTERM are handled by CleanupOnSignal.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/loratool/loratool/dtype"
)

// Limits enforced by the reader and the writer.
const (
	MaxHeaderSize = 100_000_000 // largest accepted JSON header, as in the Rust crate
	MaxTensors    = 1_000_000   // largest accepted number of tensors in one file
	MaxDepth      = 64          // deepest accepted JSON nesting
)

const metadataKey = "__metadata__"

// maxTensors is MaxTensors; a variable so tests can lower it.
var maxTensors = MaxTensors

// TensorInfo describes one tensor of a file. Begin and End are byte offsets
// relative to the start of the data section (Header.DataOffset).
type TensorInfo struct {
	Name       string
	DType      dtype.DType
	Shape      []int64
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a 0-rank tensor).
// For a TensorInfo returned by the parser it never overflows; for others it
// returns -1 on overflow or a negative dimension.
func (t TensorInfo) NumElements() int64 {
	n, ok := numElements(t.Shape)
	if !ok {
		return -1
	}
	return n
}

func numElements(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// Header is the parsed and validated header of a safetensors file.
type Header struct {
	Tensors    []TensorInfo      // sorted by Begin (ties by End, then name)
	Metadata   map[string]string // the "__metadata__" object, nil if absent
	HeaderLen  int64             // N, the length of the JSON header in bytes
	DataOffset int64             // 8+N, where the data section starts in the file
	FileSize   int64             // total file size in bytes

	index map[string]int
}

// Lookup returns the tensor with the given name.
func (h *Header) Lookup(name string) (TensorInfo, bool) {
	if h.index == nil {
		for _, t := range h.Tensors {
			if t.Name == name {
				return t, true
			}
		}
		return TensorInfo{}, false
	}
	i, ok := h.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return h.Tensors[i], true
}

// DataSize returns the size of the data section in bytes.
func (h *Header) DataSize() int64 { return h.FileSize - h.DataOffset }

// Error is the error type of this package. Msg is one line describing the
// problem; Path is the file, when there is one.
type Error struct {
	Path string
	Msg  string
}

// Error returns "PATH: MSG", or just MSG when Path is empty.
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// withPath returns err with its Path set (a *Error) or wraps it into one.
func withPath(path string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Path == "" {
			return &Error{Path: path, Msg: e.Msg}
		}
		return e
	}
	return &Error{Path: path, Msg: err.Error()}
}

// headerLen validates the 8-byte length prefix against the file size and
// returns N.
func headerLen(prefix []byte, fileSize int64) (int64, error) {
	if fileSize < 8 {
		return 0, errorf("file is too small to be a safetensors file (%d bytes, need at least 8)", fileSize)
	}
	if len(prefix) < 8 {
		return 0, errorf("header prefix is %d bytes, need at least 8", len(prefix))
	}
	n := binary.LittleEndian.Uint64(prefix)
	if n > MaxHeaderSize {
		return 0, errorf("header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if int64(n) > fileSize-8 {
		return 0, errorf("header length %d exceeds the file size (%d bytes)", n, fileSize)
	}
	return int64(n), nil
}

// ParseHeader parses and validates the header of a safetensors file of
// fileSize bytes. prefix holds at least the first 8+N bytes of the file
// (N = the little-endian uint64 in its first 8 bytes). It rejects, with a
// one-line *Error: files shorter than 8 bytes; N > 100,000,000 or past the end
// of the file; headers that are not valid UTF-8; anything but exactly one
// JSON object (JSON whitespace around it is accepted, NUL padding is not);
// JSON nested deeper than 64; duplicate keys at any level; a "__metadata__"
// that is not an object of strings; tensor entries that are not objects with
// exactly the keys dtype, shape and data_offsets; unknown dtypes; shapes that
// are not arrays of non-negative integers fitting int64; data_offsets that
// are not two such integers; end < begin; empty tensor names; more than
// 1,000,000 tensors; element or bit counts that overflow int64; sub-byte
// tensors that do not fill whole bytes; offsets that disagree with
// shape × dtype size; and, with the tensors sorted by offset, a first tensor
// not starting at 0, holes, overlaps (including identical offsets) and a
// data section that does not end exactly at the end of the file.
func ParseHeader(prefix []byte, fileSize int64) (*Header, error) {
	n, err := headerLen(prefix, fileSize)
	if err != nil {
		return nil, err
	}
	if int64(len(prefix)) < 8+n {
		return nil, errorf("header prefix is %d bytes, the header needs %d", len(prefix), 8+n)
	}
	js := prefix[8 : 8+n]
	if !utf8.Valid(js) {
		return nil, errorf("header is not valid UTF-8")
	}
	if err := checkDepth(js); err != nil {
		return nil, err
	}
	h := &Header{HeaderLen: n, DataOffset: 8 + n, FileSize: fileSize}
	if err := parseJSON(js, h); err != nil {
		return nil, err
	}
	if err := validateLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

// checkDepth rejects JSON nested deeper than MaxDepth, scanning brackets
// outside strings. Syntax errors are left to the tokenizer.
func checkDepth(js []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range js {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > MaxDepth {
				return errorf("header JSON is nested deeper than %d levels", MaxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// tokenizer wraps json.Decoder.Token with error messages of this package.
type tokenizer struct {
	dec *json.Decoder
}

func (tk *tokenizer) next() (json.Token, error) {
	t, err := tk.dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errorf("header JSON ends unexpectedly")
		}
		return nil, errorf("header is not valid JSON: %v", err)
	}
	return t, nil
}

func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return "'" + v.String() + "'"
	case string:
		return "a string"
	case json.Number:
		return "the number " + v.String()
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", t)
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func parseJSON(js []byte, h *Header) error {
	// Leading whitespace is accepted (the Rust crate does; writers may pad).
	// Check for an object first so "null", "[]" etc. get a clear message.
	i := 0
	for i < len(js) && isJSONSpace(js[i]) {
		i++
	}
	if i == len(js) {
		return errorf("header is empty (expected a JSON object)")
	}
	if js[i] != '{' {
		return errorf("header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	tk := &tokenizer{dec: dec}
	if _, err := tk.next(); err != nil { // '{'
		return err
	}
	seen := make(map[string]struct{})
	for {
		t, err := tk.next()
		if err != nil {
			return err
		}
		if t == json.Delim('}') {
			break
		}
		key, ok := t.(string)
		if !ok {
			return errorf("header is not valid JSON: unexpected %s", describe(t))
		}
		if _, dup := seen[key]; dup {
			if key == metadataKey {
				return errorf("duplicate %q key", metadataKey)
			}
			return errorf("duplicate tensor name %q", key)
		}
		seen[key] = struct{}{}
		if key == metadataKey {
			md, err := parseMetadata(tk)
			if err != nil {
				return err
			}
			h.Metadata = md
			continue
		}
		if key == "" {
			return errorf("empty tensor name")
		}
		if len(h.Tensors) >= maxTensors {
			return errorf("header lists more than %d tensors", maxTensors)
		}
		ti, err := parseTensor(tk, key)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, ti)
	}
	end := dec.InputOffset()
	for _, c := range js[end:] {
		if !isJSONSpace(c) {
			if c == 0 {
				return errorf("header has NUL bytes after the JSON object (only JSON whitespace padding is allowed)")
			}
			return errorf("header has trailing data after the JSON object (byte %d)", end)
		}
		end++
	}
	return nil
}

func parseMetadata(tk *tokenizer) (map[string]string, error) {
	t, err := tk.next()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, errorf("%q is %s, not an object", metadataKey, describe(t))
	}
	md := make(map[string]string)
	for {
		t, err := tk.next()
		if err != nil {
			return nil, err
		}
		if t == json.Delim('}') {
			return md, nil
		}
		k, ok := t.(string)
		if !ok {
			return nil, errorf("header is not valid JSON: unexpected %s in %q", describe(t), metadataKey)
		}
		if _, dup := md[k]; dup {
			return nil, errorf("duplicate metadata key %q", k)
		}
		v, err := tk.next()
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, errorf("metadata value for %q is not a string (it is %s)", k, describe(v))
		}
		md[k] = s
	}
}

func parseTensor(tk *tokenizer, name string) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	t, err := tk.next()
	if err != nil {
		return ti, err
	}
	if t != json.Delim('{') {
		return ti, errorf("tensor %q is %s, not an object", name, describe(t))
	}
	var haveDType, haveShape, haveOffsets bool
	for {
		t, err := tk.next()
		if err != nil {
			return ti, err
		}
		if t == json.Delim('}') {
			break
		}
		key, ok := t.(string)
		if !ok {
			return ti, errorf("header is not valid JSON: unexpected %s in tensor %q", describe(t), name)
		}
		switch key {
		case "dtype":
			if haveDType {
				return ti, errorf("tensor %q: duplicate key \"dtype\"", name)
			}
			haveDType = true
			v, err := tk.next()
			if err != nil {
				return ti, err
			}
			s, ok := v.(string)
			if !ok {
				return ti, errorf("tensor %q: dtype is %s, not a string", name, describe(v))
			}
			d, err := dtype.Parse(s)
			if err != nil {
				return ti, errorf("unknown dtype %q for tensor %q", s, name)
			}
			ti.DType = d
		case "shape":
			if haveShape {
				return ti, errorf("tensor %q: duplicate key \"shape\"", name)
			}
			haveShape = true
			shape, err := parseIntArray(tk, name, "shape", -1)
			if err != nil {
				return ti, err
			}
			ti.Shape = shape
		case "data_offsets":
			if haveOffsets {
				return ti, errorf("tensor %q: duplicate key \"data_offsets\"", name)
			}
			haveOffsets = true
			offs, err := parseIntArray(tk, name, "data_offsets", 2)
			if err != nil {
				return ti, err
			}
			ti.Begin, ti.End = offs[0], offs[1]
		default:
			return ti, errorf("tensor %q: unknown key %q", name, key)
		}
	}
	switch {
	case !haveDType:
		return ti, errorf("tensor %q: missing \"dtype\"", name)
	case !haveShape:
		return ti, errorf("tensor %q: missing \"shape\"", name)
	case !haveOffsets:
		return ti, errorf("tensor %q: missing \"data_offsets\"", name)
	}
	if ti.Shape == nil {
		ti.Shape = []int64{}
	}
	return ti, nil
}

// parseIntArray reads an array of non-negative integers that fit int64.
// want >= 0 requires exactly that many elements.
func parseIntArray(tk *tokenizer, name, field string, want int) ([]int64, error) {
	t, err := tk.next()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('[') {
		return nil, errorf("tensor %q: %s is %s, not an array", name, field, describe(t))
	}
	var out []int64
	for {
		t, err := tk.next()
		if err != nil {
			return nil, err
		}
		if t == json.Delim(']') {
			break
		}
		num, ok := t.(json.Number)
		if !ok {
			return nil, errorf("tensor %q: %s contains %s, not an integer", name, field, describe(t))
		}
		if want >= 0 && len(out) == want {
			return nil, errorf("tensor %q: %s has more than %d elements", name, field, want)
		}
		v, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil || v < 0 {
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange && num.String()[0] != '-' {
				return nil, errorf("tensor %q: %s value %s is too large", name, field, num)
			}
			return nil, errorf("tensor %q: %s value %s is not a non-negative integer", name, field, num)
		}
		out = append(out, v)
	}
	if want >= 0 && len(out) != want {
		return nil, errorf("tensor %q: %s has %d elements, want %d", name, field, len(out), want)
	}
	return out, nil
}

// validateLayout checks sizes and the contiguous, hole-free layout of the
// data section, sorts the tensors by offset and builds the name index.
func validateLayout(h *Header) error {
	dataSize := h.FileSize - h.DataOffset
	for i := range h.Tensors {
		t := &h.Tensors[i]
		if t.End < t.Begin {
			return errorf("tensor %q: data_offsets [%d %d] end before they begin", t.Name, t.Begin, t.End)
		}
		numel, ok := numElements(t.Shape)
		if !ok {
			return errorf("tensor %q: shape %v overflows the element count", t.Name, t.Shape)
		}
		bits := int64(t.DType.BitSize())
		if numel > math.MaxInt64/bits {
			return errorf("tensor %q: shape %v of %v overflows the byte count", t.Name, t.Shape, t.DType)
		}
		if numel*bits%8 != 0 {
			return errorf("tensor %q: shape %v of %v is %d bits, not a whole number of bytes", t.Name, t.Shape, t.DType, numel*bits)
		}
		if need := numel * bits / 8; t.End-t.Begin != need {
			return errorf("tensor %q: shape %v of %v needs %d bytes, offsets give %d", t.Name, t.Shape, t.DType, need, t.End-t.Begin)
		}
	}
	sort.Slice(h.Tensors, func(i, j int) bool {
		a, b := &h.Tensors[i], &h.Tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return a.Name < b.Name
	})
	var pos int64
	for i := range h.Tensors {
		t := &h.Tensors[i]
		switch {
		case t.Begin > pos:
			return errorf("gap before tensor %q (bytes %d-%d unused)", t.Name, pos, t.Begin)
		case t.Begin < pos:
			return errorf("tensors %q and %q overlap", h.Tensors[i-1].Name, t.Name)
		}
		if t.End > dataSize {
			return errorf("tensor %q ends at data byte %d, past the end of the file (data section is %d bytes)", t.Name, t.End, dataSize)
		}
		pos = t.End
	}
	if pos < dataSize {
		return errorf("trailing %d bytes after the last tensor", dataSize-pos)
	}
	h.index = make(map[string]int, len(h.Tensors))
	for i, t := range h.Tensors {
		h.index[t.Name] = i
	}
	return nil
}
