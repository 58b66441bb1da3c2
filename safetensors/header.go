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
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode"
	"unicode/utf16"
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
	// the value itself is not echoed: it is the file's first 8 bytes,
	// which for a file that is not a safetensors file (a followed link)
	// can be anything
	if n > MaxHeaderSize {
		return 0, errorf("header length (first 8 bytes) exceeds the limit of %d bytes: not a safetensors file", MaxHeaderSize)
	}
	if int64(n) > fileSize-8 {
		return 0, errorf("header length (first 8 bytes) exceeds the file size (%d bytes): not a safetensors file, or truncated", fileSize)
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
	h := &Header{HeaderLen: n, DataOffset: 8 + n, FileSize: fileSize}
	if err := parseJSON(js, h); err != nil {
		// The depth check takes precedence over every parse error. A
		// header that parses has brackets nested at most 3 deep, so the
		// check is only needed here.
		if derr := checkDepth(js); derr != nil {
			return nil, derr
		}
		return nil, err
	}
	if err := validateLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

// checkDepth rejects JSON nested deeper than MaxDepth, scanning brackets
// outside strings. Syntax errors are left to the parser.
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

// The header parser below is a single-pass scanner specialised for the
// safetensors schema. It reproduces, decision for decision and message for
// message, the behaviour of the original implementation built on
// encoding/json's Decoder.Token (kept in header_stdlib_test.go and compared
// against by the differential tests and the fuzzer): the same tokenizer state
// machine (see the st* states), the same value grammar and syntax error
// texts, the same order of checks, and the same string decoding (including
// U+FFFD for unpaired surrogates). Since the parser stops at the first value
// that does not fit the schema, it never has to skip over nested values.

// Token kinds.
const (
	tkObjBegin uint8 = iota + 1
	tkObjEnd
	tkArrBegin
	tkArrEnd
	tkString
	tkNumber
	tkTrue
	tkFalse
	tkNull
)

// Tokenizer states, as in encoding/json's Decoder.Token.
const (
	stTopValue uint8 = iota
	stArrayStart
	stArrayValue
	stArrayComma
	stObjectStart
	stObjectKey
	stObjectColon
	stObjectValue
	stObjectComma
)

// Number token flags.
const (
	numFracExp = 1 << iota // has a fraction or an exponent
	numNeg                 // starts with '-'
)

// hdrScanner tokenizes a header held in memory.
type hdrScanner struct {
	js    []byte
	pos   int
	state uint8
	depth int
	stack [8]uint8
	buf   []byte // scratch for unescaped strings

	// The last string or number token: for strings, js[start:end] is the
	// text between the quotes and esc reports backslash escapes in it; for
	// numbers, it is the literal.
	start, end int
	esc        bool
	flags      uint8

	ints   []int64 // shared backing array of the shapes
	dtypes []dtypeName
}

type dtypeName struct {
	name string
	d    dtype.DType
}

// strSpecial marks the bytes that end the fast path of string scanning.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// quoteChar formats c as encoding/json does in syntax errors.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

func errEOF() error { return errorf("header JSON ends unexpectedly") }

func errUnexpectedEOF() error { return errorf("header is not valid JSON: unexpected EOF") }

// errChar is encoding/json's "invalid character" syntax error; context
// starts with a space.
func errChar(c byte, context string) error {
	return errorf("header is not valid JSON: invalid character %s%s", quoteChar(c), context)
}

func (s *hdrScanner) valueAllowed() bool {
	switch s.state {
	case stTopValue, stArrayStart, stArrayValue, stObjectValue:
		return true
	}
	return false
}

func (s *hdrScanner) valueEnd() {
	switch s.state {
	case stArrayStart, stArrayValue:
		s.state = stArrayComma
	case stObjectValue:
		s.state = stObjectComma
	}
}

func (s *hdrScanner) tokenError(c byte) error {
	var context string
	switch s.state {
	case stTopValue, stArrayStart, stArrayValue, stObjectValue:
		context = " looking for beginning of value"
	case stArrayComma:
		context = " after array element"
	case stObjectKey:
		context = " looking for beginning of object key string"
	case stObjectColon:
		context = " after object key"
	case stObjectComma:
		context = " after object key:value pair"
	}
	return errChar(c, context)
}

// next returns the next token, like Decoder.Token: commas and colons are
// consumed silently, delimiters are checked against the current state.
func (s *hdrScanner) next() (uint8, error) {
	js := s.js
	for {
		i := s.pos
		for i < len(js) && isJSONSpace(js[i]) {
			i++
		}
		s.pos = i
		if i >= len(js) {
			return 0, errEOF()
		}
		c := js[i]
		switch c {
		case '[', '{':
			if !s.valueAllowed() {
				return 0, s.tokenError(c)
			}
			if s.depth == len(s.stack) {
				// Unreachable: the parser never descends this far.
				return 0, errorf("header JSON is nested deeper than %d levels", len(s.stack))
			}
			s.stack[s.depth] = s.state
			s.depth++
			s.pos = i + 1
			if c == '[' {
				s.state = stArrayStart
				return tkArrBegin, nil
			}
			s.state = stObjectStart
			return tkObjBegin, nil
		case ']', '}':
			if c == ']' && s.state != stArrayStart && s.state != stArrayComma ||
				c == '}' && s.state != stObjectStart && s.state != stObjectComma || s.depth == 0 {
				return 0, s.tokenError(c)
			}
			s.pos = i + 1
			s.depth--
			s.state = s.stack[s.depth]
			s.valueEnd()
			if c == ']' {
				return tkArrEnd, nil
			}
			return tkObjEnd, nil
		case ':':
			if s.state != stObjectColon {
				return 0, s.tokenError(c)
			}
			s.pos = i + 1
			s.state = stObjectValue
			continue
		case ',':
			switch s.state {
			case stArrayComma:
				s.state = stArrayValue
			case stObjectComma:
				s.state = stObjectKey
			default:
				return 0, s.tokenError(c)
			}
			s.pos = i + 1
			continue
		case '"':
			if s.state == stObjectStart || s.state == stObjectKey {
				t, err := s.scanString(i)
				if err == nil {
					s.state = stObjectColon
				}
				return t, err
			}
		}
		if !s.valueAllowed() {
			return 0, s.tokenError(c)
		}
		t, err := s.scanValue(i)
		if err == nil {
			s.valueEnd()
		}
		return t, err
	}
}

// scanValue scans the string, number or literal starting at js[i].
func (s *hdrScanner) scanValue(i int) (uint8, error) {
	switch c := s.js[i]; {
	case c == '"':
		return s.scanString(i)
	case c == '-' || isDigit(c):
		return s.scanNumber(i)
	case c == 't':
		return s.scanLiteral(i, "true", tkTrue)
	case c == 'f':
		return s.scanLiteral(i, "false", tkFalse)
	case c == 'n':
		return s.scanLiteral(i, "null", tkNull)
	default:
		return 0, errChar(c, " looking for beginning of value")
	}
}

// scanString scans the string whose opening quote is js[i].
func (s *hdrScanner) scanString(i int) (uint8, error) {
	js := s.js
	s.start, s.esc = i+1, false
	j := i + 1
	for {
		for j < len(js) && !strSpecial[js[j]] {
			j++
		}
		if j >= len(js) {
			return 0, errUnexpectedEOF()
		}
		switch c := js[j]; c {
		case '"':
			s.end = j
			s.pos = j + 1
			return tkString, nil
		case '\\':
			s.esc = true
			if j+1 >= len(js) {
				return 0, errUnexpectedEOF()
			}
			switch e := js[j+1]; e {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(js) {
						return 0, errUnexpectedEOF()
					}
					if !isHex(js[k]) {
						return 0, errChar(js[k], ` in \u hexadecimal character escape`)
					}
				}
				j += 6
			default:
				return 0, errChar(e, " in string escape code")
			}
		default: // control character
			return 0, errChar(c, " in string literal")
		}
	}
}

// scanNumber scans the number starting at js[i] with encoding/json's
// grammar: the number ends at the first byte that cannot continue it.
func (s *hdrScanner) scanNumber(i int) (uint8, error) {
	js := s.js
	flags := uint8(0)
	j := i
	if js[j] == '-' {
		flags |= numNeg
		j++
		if j >= len(js) {
			return 0, errUnexpectedEOF()
		}
		if !isDigit(js[j]) {
			return 0, errChar(js[j], " in numeric literal")
		}
	}
	if js[j] == '0' {
		j++
	} else {
		for j < len(js) && isDigit(js[j]) {
			j++
		}
	}
	if j < len(js) && js[j] == '.' {
		flags |= numFracExp
		j++
		if j >= len(js) {
			return 0, errUnexpectedEOF()
		}
		if !isDigit(js[j]) {
			return 0, errChar(js[j], " after decimal point in numeric literal")
		}
		for j < len(js) && isDigit(js[j]) {
			j++
		}
	}
	if j < len(js) && (js[j] == 'e' || js[j] == 'E') {
		flags |= numFracExp
		j++
		if j < len(js) && (js[j] == '+' || js[j] == '-') {
			j++
		}
		if j >= len(js) {
			return 0, errUnexpectedEOF()
		}
		if !isDigit(js[j]) {
			return 0, errChar(js[j], " in exponent of numeric literal")
		}
		for j < len(js) && isDigit(js[j]) {
			j++
		}
	}
	s.start, s.end, s.flags = i, j, flags
	s.pos = j
	return tkNumber, nil
}

// scanLiteral scans true, false or null starting at js[i].
func (s *hdrScanner) scanLiteral(i int, word string, kind uint8) (uint8, error) {
	js := s.js
	for k := 1; k < len(word); k++ {
		if i+k >= len(js) {
			return 0, errUnexpectedEOF()
		}
		if js[i+k] != word[k] {
			return 0, errChar(js[i+k], " in literal "+word+" (expecting "+quoteChar(word[k])+")")
		}
	}
	s.pos = i + len(word)
	return kind, nil
}

// text returns the decoded value of the last string token, or the literal
// of the last number token. The result may alias the input or the scratch
// buffer: it is valid until the next call of next or text.
func (s *hdrScanner) text() []byte {
	raw := s.js[s.start:s.end]
	if !s.esc {
		return raw
	}
	s.buf = appendUnquoted(s.buf[:0], raw)
	return s.buf
}

// appendUnquoted appends the decoded contents of a scanned (hence
// well-formed) JSON string with valid UTF-8 to b, exactly as encoding/json
// decodes it: a \u escape of a surrogate that does not form a valid pair
// with an immediately following \u escape becomes U+FFFD.
func appendUnquoted(b, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		if c != '\\' {
			k := r + 1
			for k < len(s) && s[k] != '\\' {
				k++
			}
			b = append(b, s[r:k]...)
			r = k
			continue
		}
		if r+1 >= len(s) {
			return b // unreachable for scanned strings
		}
		switch e := s[r+1]; e {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			rr := getu4(s[r:])
			if rr < 0 {
				return b // unreachable for scanned strings
			}
			r += 6
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
					r += 6
					b = utf8.AppendRune(b, dec)
					continue
				}
				rr = unicode.ReplacementChar
			}
			b = utf8.AppendRune(b, rr)
			continue
		default: // '"', '\\', '/'
			b = append(b, e)
		}
		r += 2
	}
	return b
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// describe names a token in error messages.
func (s *hdrScanner) describe(kind uint8) string {
	switch kind {
	case tkObjBegin:
		return "an object"
	case tkArrBegin:
		return "an array"
	case tkObjEnd:
		return "'}'"
	case tkArrEnd:
		return "']'"
	case tkString:
		return "a string"
	case tkNumber:
		return "the number " + string(s.js[s.start:s.end])
	case tkTrue, tkFalse:
		return "a boolean"
	}
	return "null"
}

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
	s := &hdrScanner{js: js}
	if _, err := s.next(); err != nil { // '{'
		return err
	}
	// A tensor entry takes at least 50 bytes; expect about 128.
	estimate := min(len(js)/128+1, 1<<14)
	h.Tensors = make([]TensorInfo, 0, estimate)
	s.ints = make([]int64, 0, 2*estimate)
	seen := make(map[string]struct{}, estimate)
	for {
		t, err := s.next()
		if err != nil {
			return err
		}
		if t == tkObjEnd {
			break
		}
		if t != tkString {
			return errorf("header is not valid JSON: unexpected %s", s.describe(t))
		}
		key := s.text()
		if _, dup := seen[string(key)]; dup {
			if string(key) == metadataKey {
				return errorf("duplicate %q key", metadataKey)
			}
			return errorf("duplicate tensor name %q", key)
		}
		if string(key) == metadataKey {
			seen[metadataKey] = struct{}{}
			md, err := s.parseMetadata()
			if err != nil {
				return err
			}
			h.Metadata = md
			continue
		}
		name := string(key)
		seen[name] = struct{}{}
		if name == "" {
			return errorf("empty tensor name")
		}
		if len(h.Tensors) >= maxTensors {
			return errorf("header lists more than %d tensors", maxTensors)
		}
		ti, err := s.parseTensor(name)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, ti)
	}
	s.clip(h)
	end := s.pos
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

// clip releases the spare capacity of the preallocated tensor and shape
// arrays when the size estimate was far too high (say, a header of mostly
// metadata), so that a retained Header does not pin it.
func (s *hdrScanner) clip(h *Header) {
	if len(h.Tensors) == 0 {
		h.Tensors = nil
		return
	}
	if cap(h.Tensors) > 2*len(h.Tensors)+16 {
		h.Tensors = append([]TensorInfo(nil), h.Tensors...)
	}
	if cap(s.ints) > 2*len(s.ints)+64 {
		// Only the last chunk can be oversized, but copying every shape
		// is simpler and cheap.
		n := 0
		for _, t := range h.Tensors {
			n += len(t.Shape)
		}
		ints := make([]int64, 0, n)
		for i := range h.Tensors {
			t := &h.Tensors[i]
			start := len(ints)
			ints = append(ints, t.Shape...)
			t.Shape = ints[start:len(ints):len(ints)]
		}
		s.ints = ints
	}
}

func (s *hdrScanner) parseMetadata() (map[string]string, error) {
	t, err := s.next()
	if err != nil {
		return nil, err
	}
	if t != tkObjBegin {
		return nil, errorf("%q is %s, not an object", metadataKey, s.describe(t))
	}
	md := make(map[string]string)
	for {
		t, err := s.next()
		if err != nil {
			return nil, err
		}
		if t == tkObjEnd {
			return md, nil
		}
		if t != tkString {
			return nil, errorf("header is not valid JSON: unexpected %s in %q", s.describe(t), metadataKey)
		}
		kb := s.text()
		if _, dup := md[string(kb)]; dup {
			return nil, errorf("duplicate metadata key %q", kb)
		}
		k := string(kb)
		v, err := s.next()
		if err != nil {
			return nil, err
		}
		if v != tkString {
			return nil, errorf("metadata value for %q is not a string (it is %s)", k, s.describe(v))
		}
		md[k] = string(s.text())
	}
}

// parseDType decodes the dtype name b, caching the names seen so far.
func (s *hdrScanner) parseDType(b []byte) (dtype.DType, bool) {
	for _, c := range s.dtypes {
		if c.name == string(b) {
			return c.d, true
		}
	}
	name := string(b)
	d, err := dtype.Parse(name)
	if err != nil {
		return d, false
	}
	if len(s.dtypes) < 8 {
		s.dtypes = append(s.dtypes, dtypeName{name, d})
	}
	return d, true
}

func (s *hdrScanner) parseTensor(name string) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	t, err := s.next()
	if err != nil {
		return ti, err
	}
	if t != tkObjBegin {
		return ti, errorf("tensor %q is %s, not an object", name, s.describe(t))
	}
	var haveDType, haveShape, haveOffsets bool
	for {
		t, err := s.next()
		if err != nil {
			return ti, err
		}
		if t == tkObjEnd {
			break
		}
		if t != tkString {
			return ti, errorf("header is not valid JSON: unexpected %s in tensor %q", s.describe(t), name)
		}
		switch key := s.text(); string(key) {
		case "dtype":
			if haveDType {
				return ti, errorf("tensor %q: duplicate key \"dtype\"", name)
			}
			haveDType = true
			v, err := s.next()
			if err != nil {
				return ti, err
			}
			if v != tkString {
				return ti, errorf("tensor %q: dtype is %s, not a string", name, s.describe(v))
			}
			b := s.text()
			d, ok := s.parseDType(b)
			if !ok {
				return ti, errorf("unknown dtype %q for tensor %q", b, name)
			}
			ti.DType = d
		case "shape":
			if haveShape {
				return ti, errorf("tensor %q: duplicate key \"shape\"", name)
			}
			haveShape = true
			shape, err := s.parseIntArray(name, "shape", -1)
			if err != nil {
				return ti, err
			}
			ti.Shape = shape
		case "data_offsets":
			if haveOffsets {
				return ti, errorf("tensor %q: duplicate key \"data_offsets\"", name)
			}
			haveOffsets = true
			offs, err := s.parseIntArray(name, "data_offsets", 2)
			if err != nil {
				return ti, err
			}
			ti.Begin, ti.End = offs[0], offs[1]
			// The offsets need not stay in the shared shape array.
			s.ints = s.ints[:len(s.ints)-2]
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
	return ti, nil
}

// parseIntArray reads an array of non-negative integers that fit int64.
// want >= 0 requires exactly that many elements. The result is a full slice
// expression of the shared array s.ints, which it ends (never nil).
func (s *hdrScanner) parseIntArray(name, field string, want int) ([]int64, error) {
	t, err := s.next()
	if err != nil {
		return nil, err
	}
	if t != tkArrBegin {
		return nil, errorf("tensor %q: %s is %s, not an array", name, field, s.describe(t))
	}
	start := len(s.ints)
	for {
		t, err := s.next()
		if err != nil {
			return nil, err
		}
		if t == tkArrEnd {
			break
		}
		if t != tkNumber {
			return nil, errorf("tensor %q: %s contains %s, not an integer", name, field, s.describe(t))
		}
		if want >= 0 && len(s.ints)-start == want {
			return nil, errorf("tensor %q: %s has more than %d elements", name, field, want)
		}
		v, ok, tooLarge := s.intValue()
		if !ok {
			num := clipNumber(s.js[s.start:s.end])
			if tooLarge {
				return nil, errorf("tensor %q: %s value %s is too large", name, field, num)
			}
			return nil, errorf("tensor %q: %s value %s is not a non-negative integer", name, field, num)
		}
		if len(s.ints) == cap(s.ints) {
			// Start a new backing array, leaving the finished shapes in
			// the old one.
			n := len(s.ints) - start
			grown := make([]int64, n, max(2*cap(s.ints), 2*n, 16))
			copy(grown, s.ints[start:])
			s.ints, start = grown, 0
		}
		s.ints = append(s.ints, v)
	}
	if n := len(s.ints) - start; want >= 0 && n != want {
		return nil, errorf("tensor %q: %s has %d elements, want %d", name, field, n, want)
	}
	return s.ints[start:len(s.ints):len(s.ints)], nil
}

// intValue converts the last number token as strconv.ParseInt(text, 10, 64) with
// the negative results rejected: ok is false for fractions, exponents,
// negative numbers other than -0, and (tooLarge) positive values above
// math.MaxInt64.
func (s *hdrScanner) intValue() (v int64, ok, tooLarge bool) {
	digits := s.js[s.start:s.end]
	if s.flags&numFracExp != 0 {
		if s.flags&numNeg != 0 {
			return 0, false, false
		}
		// strconv.ParseInt (the reference) reports a range error when the
		// leading digits overflow uint64 before the first '.', 'e' or 'E',
		// a syntax error otherwise
		var n uint64
		for _, c := range digits {
			if c < '0' || c > '9' {
				return 0, false, false
			}
			d := uint64(c - '0')
			if n > (math.MaxUint64-d)/10 {
				return 0, false, true
			}
			n = n*10 + d
		}
		return 0, false, false
	}
	if s.flags&numNeg != 0 {
		// "-0" is the only negative integer literal ParseInt maps to a
		// non-negative value (the grammar allows no "-00").
		return 0, len(digits) == 2 && digits[1] == '0', false
	}
	for _, c := range digits {
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false, true
		}
		v = v*10 + d
	}
	return v, true, false
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

// clipNumber shortens a number token echoed in an error: a crafted header
// may hold a number of any length.
func clipNumber(num []byte) string {
	if len(num) <= 40 {
		return string(num)
	}
	return fmt.Sprintf("%s…(%d characters)", num[:32], len(num))
}
