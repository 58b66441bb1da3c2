package safetensors

// This file keeps the original encoding/json-based header parser, moved here
// verbatim (only renamed) from header.go, as the reference implementation
// for the differential tests and the fuzzer.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/loratool/loratool/dtype"
)

// parseHeaderStdlib is the original ParseHeader.
func parseHeaderStdlib(prefix []byte, fileSize int64) (*Header, error) {
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
	if err := parseJSONStdlib(js, h); err != nil {
		return nil, err
	}
	if err := validateLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

// stdTokenizer wraps json.Decoder.Token with error messages of this package.
type stdTokenizer struct {
	dec *json.Decoder
}

func (tk *stdTokenizer) next() (json.Token, error) {
	t, err := tk.dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errorf("header JSON ends unexpectedly")
		}
		return nil, errorf("header is not valid JSON: %v", err)
	}
	return t, nil
}

func describeStdlib(t json.Token) string {
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

func parseJSONStdlib(js []byte, h *Header) error {
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
	tk := &stdTokenizer{dec: dec}
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
			return errorf("header is not valid JSON: unexpected %s", describeStdlib(t))
		}
		if _, dup := seen[key]; dup {
			if key == metadataKey {
				return errorf("duplicate %q key", metadataKey)
			}
			return errorf("duplicate tensor name %q", key)
		}
		seen[key] = struct{}{}
		if key == metadataKey {
			md, err := parseMetadataStdlib(tk)
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
		ti, err := parseTensorStdlib(tk, key)
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

func parseMetadataStdlib(tk *stdTokenizer) (map[string]string, error) {
	t, err := tk.next()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, errorf("%q is %s, not an object", metadataKey, describeStdlib(t))
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
			return nil, errorf("header is not valid JSON: unexpected %s in %q", describeStdlib(t), metadataKey)
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
			return nil, errorf("metadata value for %q is not a string (it is %s)", k, describeStdlib(v))
		}
		md[k] = s
	}
}

func parseTensorStdlib(tk *stdTokenizer, name string) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	t, err := tk.next()
	if err != nil {
		return ti, err
	}
	if t != json.Delim('{') {
		return ti, errorf("tensor %q is %s, not an object", name, describeStdlib(t))
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
			return ti, errorf("header is not valid JSON: unexpected %s in tensor %q", describeStdlib(t), name)
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
				return ti, errorf("tensor %q: dtype is %s, not a string", name, describeStdlib(v))
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
			shape, err := parseIntArrayStdlib(tk, name, "shape", -1)
			if err != nil {
				return ti, err
			}
			ti.Shape = shape
		case "data_offsets":
			if haveOffsets {
				return ti, errorf("tensor %q: duplicate key \"data_offsets\"", name)
			}
			haveOffsets = true
			offs, err := parseIntArrayStdlib(tk, name, "data_offsets", 2)
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
func parseIntArrayStdlib(tk *stdTokenizer, name, field string, want int) ([]int64, error) {
	t, err := tk.next()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('[') {
		return nil, errorf("tensor %q: %s is %s, not an array", name, field, describeStdlib(t))
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
			return nil, errorf("tensor %q: %s contains %s, not an integer", name, field, describeStdlib(t))
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
